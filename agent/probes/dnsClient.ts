import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encode, RECURSION_DESIRED } from 'dns-packet';
import { deadlineSignal } from '../../common/deadline.js';
import { readReply, type DnsQuestion, type ReplyReading } from './dnsReply.js';

/**
 * One DNS query to one server: a single UDP datagram, and one TCP retry only when the reply
 * is truncated. No other retries: a health check reports what a client would see, and a
 * probe that retried would hide a lossy resolver and multiply load on a struggling one.
 */

export interface DnsServerAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

export type DnsOutcome =
  | 'ok'
  | 'timeout'
  | 'servfail'
  | 'nxdomain'
  | 'refused'
  | 'otherRcode'
  | 'malformed'
  | 'networkError';

export interface DnsQueryResult {
  outcome: DnsOutcome;
  /** The reply's RCODE name, null when no usable reply came back. */
  rcode: string | null;
  latencyMs: number;
  /** Data of the answer records of the asked type (addresses for A/AAAA). */
  answers: string[];
  /** The transport of the final exchange: `tcp` after a truncated UDP reply. */
  transport: 'udp' | 'tcp';
  /** Why the outcome is not `ok`, for a person; empty when ok. */
  detail: string;
  /** Replies that came back but answered another query (id or question), and were ignored. */
  discarded: number;
}

const DEFAULT_PORT = 53;

/** Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address; the host must be an IP. */
export function parseDnsServer(text: string): DnsServerAddress {
  const trimmed = text.trim();
  let host = trimmed;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1] as string;
    portText = bracketed[2];
  } else if (trimmed.split(':').length === 2) {
    [host, portText] = trimmed.split(':') as [string, string];
  }
  const family = isIP(host);
  if (family !== 4 && family !== 6) {
    throw new Error(
      `"${text}" is not an IP address; write host, host:port or [v6]:port with an IP (the probe does not look up the resolver's own name)`,
    );
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65_535)) throw new Error(`"${text}" has port "${portText}"; use a port from 1 to 65535`);
  }
  return { host, port, family };
}

export function formatDnsServer(server: DnsServerAddress): string {
  return server.family === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/**
 * Resolves (never rejects) with the outcome, unless `signal` aborts first: then it rejects with
 * the signal's reason, because the caller cancelled the sample rather than DNS failing.
 * `timeoutMs` bounds the whole query, the TCP retry included. A reply to another query (a
 * late answer to an earlier, timed-out one) is counted and ignored, and the wait goes on.
 */
export async function queryDns(
  server: DnsServerAddress,
  question: DnsQuestion,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<DnsQueryResult> {
  const startedAt = performance.now();
  const timeout = deadlineSignal(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const id = randomInt(0, 0x10000);
  const query = encode({
    type: 'query',
    id,
    flags: RECURSION_DESIRED,
    questions: [{ name: question.name, type: question.type, class: 'IN' }],
  });
  let transport: 'udp' | 'tcp' = 'udp';
  let discarded = 0;
  let lastDiscard = '';
  const finish = (outcome: DnsOutcome, detail: string, rcode: string | null = null, answers: string[] = []): DnsQueryResult => ({
    outcome,
    rcode,
    latencyMs: Math.round((performance.now() - startedAt) * 10) / 10,
    answers,
    transport,
    detail,
    discarded,
  });
  const read =
    (over: 'udp' | 'tcp') =>
    (reply: Buffer): MatchedReading | undefined => {
      const reading = readReply(reply, id, question, over);
      if (reading.kind !== 'unmatched') return reading;
      discarded += 1;
      lastDiscard = reading.detail;
      return undefined;
    };

  try {
    let reading = await exchangeUdp(server, query, signal, read('udp'));
    if (reading.kind === 'truncated') {
      transport = 'tcp';
      reading = await exchangeTcp(server, query, signal, read('tcp'));
    }
    if (reading.kind === 'malformed') return finish('malformed', reading.detail);
    if (reading.kind === 'truncated') return finish('malformed', 'reply is truncated');
    const outcome = outcomeOf(reading.rcode);
    return finish(outcome, outcome === 'ok' ? '' : `server answered ${reading.rcode}`, reading.rcode, reading.answers);
  } catch (err) {
    // Whichever fired first decides: the query's own timeout is a finding, the caller's cancel is not.
    if (signal.aborted) {
      if (signal.reason === timeout.reason) return finish('timeout', timeoutDetail());
      throw signal.reason;
    }
    if (err instanceof MalformedStream) return finish('malformed', err.message);
    return finish('networkError', networkDetail(err as NodeJS.ErrnoException, transport));
  }

  function timeoutDetail(): string {
    const ignored = discarded === 0 ? '' : ` (${discarded} reply(ies) to another query ignored, the last: ${lastDiscard})`;
    return `no reply within ${options.timeoutMs} ms over ${transport.toUpperCase()}${ignored}`;
  }
}

function outcomeOf(rcode: string): DnsOutcome {
  switch (rcode) {
    case 'NOERROR':
      return 'ok';
    case 'SERVFAIL':
      return 'servfail';
    case 'NXDOMAIN':
      return 'nxdomain';
    case 'REFUSED':
      return 'refused';
    default:
      return 'otherRcode';
  }
}

function networkDetail(err: NodeJS.ErrnoException, transport: 'udp' | 'tcp'): string {
  if (err.code === 'ECONNREFUSED') return `connection refused over ${transport.toUpperCase()} (nothing listening)`;
  return `${transport.toUpperCase()} error: ${err.code ?? err.message}`;
}

/** The TCP stream ended inside a frame: the reply is cut short, not a network failure. */
class MalformedStream extends Error {}

type MatchedReading = Exclude<ReplyReading, { kind: 'unmatched' }>;
/** What to make of one reply: a reading ends the exchange, undefined ignores it and waits on. */
type ReplyFilter = (reply: Buffer) => MatchedReading | undefined;

/**
 * Sends one datagram and resolves with the reading of the first datagram back that `accept`
 * takes. The socket is connected, so the kernel delivers only datagrams from the server's
 * address and port (and reports ICMP port-unreachable); the rest never reach the agent.
 */
function exchangeUdp(server: DnsServerAddress, query: Buffer, signal: AbortSignal, accept: ReplyFilter): Promise<MatchedReading> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const settle = (err: unknown, reading?: MatchedReading) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.close();
      if (reading) resolve(reading);
      else reject(err);
    };
    const onAbort = () => settle(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => settle(err));
    socket.on('message', (reply) => {
      const reading = accept(reply);
      if (reading) settle(undefined, reading);
    });
    socket.connect(server.port, server.host, () => {
      socket.send(query, (err) => {
        if (err) settle(err);
      });
    });
  });
}

/** One query over TCP with the 2-byte length framing of RFC 1035 4.2.2, read across chunks; frames `accept` ignores are skipped. */
function exchangeTcp(server: DnsServerAddress, query: Buffer, signal: AbortSignal, accept: ReplyFilter): Promise<MatchedReading> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const socket = connect({ host: server.host, port: server.port, family: server.family });
    /** Bytes of frames not yet complete. */
    let pending = Buffer.alloc(0);
    let settled = false;
    const settle = (err: unknown, reading?: MatchedReading) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (reading) resolve(reading);
      else reject(err);
    };
    const onAbort = () => settle(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(query.length);
      socket.write(Buffer.concat([prefix, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const length = pending.readUInt16BE(0);
        const reading = accept(pending.subarray(2, 2 + length));
        if (reading) return settle(undefined, reading);
        pending = pending.subarray(2 + length);
      }
    });
    socket.on('end', () => {
      const expected = pending.length >= 2 ? ` of ${pending.readUInt16BE(0) + 2}` : '';
      settle(
        pending.length === 0
          ? new Error('server closed the TCP connection without replying')
          : new MalformedStream(`TCP reply cut short: connection closed after ${pending.length}${expected} bytes`),
      );
    });
    socket.on('error', (err) => settle(err));
    socket.on('close', () => settle(new Error('TCP connection closed')));
  });
}
