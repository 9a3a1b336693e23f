import { isIPv4, isIPv6 } from 'node:net';
import { decode, type Answer, type DecodedPacket } from 'dns-packet';

/**
 * Reads one DNS reply defensively. dns-packet trusts the header: it allocates arrays of the
 * claimed record counts and walks them, and throws on bad bytes. So everything the header
 * claims is checked against the query and the byte length first, and decode runs only on a
 * reply whose counts are small and could fit.
 */

export type DnsQueryType = 'A' | 'AAAA' | 'NS' | 'SOA';

export interface DnsQuestion {
  name: string;
  type: DnsQueryType;
}

export type ReplyReading =
  /** The server set TC: the answer did not fit, ask again over TCP. */
  | { kind: 'truncated' }
  /**
   * Not a reply to this query (another id, another question): a late answer to an earlier
   * query, or someone else's. Resolvers drop these and keep waiting; so does the probe.
   */
  | { kind: 'unmatched'; detail: string }
  | { kind: 'malformed'; detail: string }
  /** A well-formed reply; `answers` holds the data of the records of the asked type. */
  | { kind: 'answered'; rcode: string; answers: string[] };

const HEADER_BYTES = 12;
/** Root name (1 byte) + type + class. */
const MIN_QUESTION_BYTES = 5;
/** Root name (1 byte) + type + class + TTL + rdlength. */
const MIN_RECORD_BYTES = 11;
/** Far above any answer a health check gets; keeps decode work bounded. */
export const MAX_RECORDS_PER_SECTION = 64;

const QR = 0x8000;
const TC = 0x0200;
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE_${rcode}`;
}

/** `transport` matters only for TC: over TCP there is no bigger channel to retry on. */
export function readReply(reply: Buffer, id: number, question: DnsQuestion, transport: 'udp' | 'tcp'): ReplyReading {
  if (reply.length < HEADER_BYTES) {
    return malformed(`reply is ${reply.length} bytes, shorter than the ${HEADER_BYTES}-byte DNS header`);
  }
  const replyId = reply.readUInt16BE(0);
  if (replyId !== id) return { kind: 'unmatched', detail: `reply id ${replyId} does not match query id ${id}` };
  const flags = reply.readUInt16BE(2);
  if ((flags & QR) === 0) return malformed('reply has the QR bit clear (it is a query, not a response)');
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return malformed(`reply opcode ${opcode} is not QUERY (0)`);
  if ((flags & TC) !== 0) {
    return transport === 'udp' ? { kind: 'truncated' } : malformed('reply over TCP has the TC (truncated) bit set');
  }

  const counts = {
    question: reply.readUInt16BE(4),
    answer: reply.readUInt16BE(6),
    authority: reply.readUInt16BE(8),
    additional: reply.readUInt16BE(10),
  };
  if (counts.question > 1) return malformed(`reply claims ${counts.question} questions; a reply to one query has one`);
  for (const section of ['answer', 'authority', 'additional'] as const) {
    if (counts[section] > MAX_RECORDS_PER_SECTION) {
      return malformed(`reply claims ${counts[section]} ${section} records (limit ${MAX_RECORDS_PER_SECTION})`);
    }
  }
  const records = counts.answer + counts.authority + counts.additional;
  const minimumBytes = HEADER_BYTES + counts.question * MIN_QUESTION_BYTES + records * MIN_RECORD_BYTES;
  if (minimumBytes > reply.length) {
    return malformed(
      `reply claims ${counts.question} question(s) and ${records} records, which need at least ${minimumBytes} bytes, but it has ${reply.length}`,
    );
  }

  const rcode = rcodeName(flags & 0xf);
  if (counts.question === 0) {
    // Servers may drop the question from an error reply; an answer or NXDOMAIN must say what it answers.
    if (rcode === 'NOERROR' || rcode === 'NXDOMAIN') return malformed(`${rcode} reply does not echo the question`);
    return { kind: 'answered', rcode, answers: [] };
  }

  let packet: DecodedPacket;
  try {
    packet = decode(reply);
  } catch (err) {
    return malformed(`cannot decode reply: ${(err as Error).message}`);
  }
  if (decode.bytes > reply.length) {
    return malformed(`records run past the end of the reply (${decode.bytes} of ${reply.length} bytes)`);
  }

  const echoed = packet.questions?.[0];
  if (!echoed) return malformed('reply does not echo the question');
  const echoedClass = echoed.class ?? 'IN';
  if (
    normaliseName(echoed.name) !== normaliseName(question.name) ||
    echoed.type !== question.type ||
    echoedClass !== 'IN'
  ) {
    return {
      kind: 'unmatched',
      detail: `reply answers ${echoed.name} ${echoed.type} ${echoedClass}, not the question ${question.name} ${question.type} IN`,
    };
  }

  const answers: string[] = [];
  for (const record of packet.answers ?? []) {
    if (record.type !== question.type || record.class !== 'IN') continue;
    const data = recordData(record);
    if (data === undefined) return malformed(`${record.type} record for ${record.name} has unreadable data`);
    answers.push(data);
  }
  return { kind: 'answered', rcode, answers };
}

function malformed(detail: string): ReplyReading {
  return { kind: 'malformed', detail };
}

/** DNS names compare case-insensitively; the trailing dot is optional (the root is ''). */
export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function recordData(record: Answer): string | undefined {
  switch (record.type) {
    case 'A':
      return typeof record.data === 'string' && isIPv4(record.data) ? record.data : undefined;
    case 'AAAA':
      return typeof record.data === 'string' && isIPv6(record.data) ? record.data : undefined;
    case 'NS':
      return typeof record.data === 'string' ? record.data : undefined;
    case 'SOA':
      return typeof record.data.mname === 'string' ? record.data.mname : undefined;
    default:
      return undefined;
  }
}
