import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import {
  decode,
  encode,
  RECURSION_AVAILABLE,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
  type Answer,
  type Packet,
  type Question,
} from 'dns-packet';

/**
 * A DNS server on 127.0.0.1 for tests: UDP and TCP on one ephemeral port, with a behaviour
 * that can be switched while a client (or a whole agent) uses it, e.g. to inject SERVFAIL.
 */

export type DnsServerMode =
  /** Answer with the configured records (see setRecords). */
  | 'answer'
  | 'nxdomain'
  | 'servfail'
  | 'refused'
  /** An RCODE the probe has no name for (FORMERR). */
  | 'formerr'
  /** Never reply. */
  | 'timeout'
  /** Over UDP: an empty reply with TC set; over TCP: the full answer. */
  | 'truncate'
  /** Like truncate, but the TCP connection closes halfway through the answer. */
  | 'truncateThenCut'
  /** Random bytes instead of a reply (never with the query's id). */
  | 'garbage'
  /** A header that matches the query, followed by random bytes. */
  | 'corruptRecords'
  | 'wrongId'
  /** A reply that echoes another name than the one asked. */
  | 'wrongQuestion'
  /** A small real reply whose header claims 65535 records in every section. */
  | 'inflatedCounts'
  /**
   * Over UDP, a server answering late: each reply goes out only when the next query arrives,
   * to that query's sender, so every query gets the previous query's answer (its id).
   */
  | 'late'
  /** Like late, and then the right answer 20 ms after the stale one. */
  | 'lateThenAnswer'
  /** Over UDP, the right answer sent from another port than the one queried. */
  | 'fromOtherPort';

export interface DnsRecords {
  A?: string[];
  AAAA?: string[];
  NS?: string[];
}

export interface ReceivedQuery {
  transport: 'udp' | 'tcp';
  id: number;
  name: string;
  type: string;
}

const HOST = '127.0.0.1';
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const REFUSED = 5;
const TTL = 30;

export class TestDnsServer {
  /** Every query received, in order, over both transports. */
  readonly queries: ReceivedQuery[] = [];
  private mode: DnsServerMode = 'answer';
  private records: DnsRecords = { A: ['10.0.0.1'] };
  private tcpChunkBytes = 0;
  private readonly connections = new Set<TcpSocket>();
  /** The reply a `late` server has not sent yet. */
  private held: Buffer | undefined;

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    /** Another port of this host, for replies from the wrong source. */
    private readonly otherUdp: UdpSocket,
    readonly port: number,
  ) {
    udp.on('message', (message, peer) => {
      const reply = this.reply(message, 'udp');
      if (!reply) return;
      const send = (bytes: Buffer) => udp.send(bytes, peer.port, peer.address);
      if (this.mode === 'late' || this.mode === 'lateThenAnswer') {
        const stale = this.held;
        this.held = reply;
        if (stale) send(stale);
        if (this.mode === 'lateThenAnswer') setTimeout(() => send(reply), 20);
      } else if (this.mode === 'fromOtherPort') {
        otherUdp.send(reply, peer.port, peer.address);
      } else {
        send(reply);
      }
    });
    tcp.on('connection', (socket) => this.serveTcp(socket));
  }

  /**
   * Binds TCP to an ephemeral port (or `port`: 53 inside a test node's own network namespace,
   * where resolv.conf can name no other), then UDP to the same one (retrying if UDP's is taken).
   */
  static async start(options: { mode?: DnsServerMode; records?: DnsRecords; port?: number } = {}): Promise<TestDnsServer> {
    for (let attempt = 0; ; attempt++) {
      const tcp = createServer();
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(options.port ?? 0, HOST, resolve);
      });
      const port = (tcp.address() as { port: number }).port;
      const udp = createSocket('udp4');
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(port, HOST, resolve);
        });
      } catch (err) {
        udp.close();
        await new Promise((resolve) => tcp.close(resolve));
        if (attempt < 10 && options.port === undefined && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw err;
      }
      const otherUdp = createSocket('udp4');
      await new Promise<void>((resolve) => otherUdp.bind(0, HOST, resolve));
      const server = new TestDnsServer(udp, tcp, otherUdp, port);
      if (options.mode) server.setMode(options.mode);
      if (options.records) server.setRecords(options.records);
      return server;
    }
  }

  /** `127.0.0.1:<port>`, the form a dns check's `server` takes. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  setMode(mode: DnsServerMode): void {
    this.mode = mode;
    this.held = undefined;
  }

  setRecords(records: DnsRecords): void {
    this.records = records;
  }

  /** Writes TCP replies in pieces of `bytes` (0: whole), a few ms apart, so clients see partial reads. */
  setTcpChunkBytes(bytes: number): void {
    this.tcpChunkBytes = bytes;
  }

  async stop(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
    await new Promise<void>((resolve) => this.otherUdp.close(() => resolve()));
    await new Promise((resolve) => this.tcp.close(resolve));
  }

  private serveTcp(socket: TcpSocket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        const reply = this.reply(message, 'tcp');
        if (!reply) continue;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        const frame = Buffer.concat([prefix, reply]);
        if (this.mode === 'truncateThenCut') socket.end(frame.subarray(0, frame.length >> 1));
        else void this.writeInChunks(socket, frame);
      }
    });
  }

  private async writeInChunks(socket: TcpSocket, frame: Buffer): Promise<void> {
    const size = this.tcpChunkBytes > 0 ? this.tcpChunkBytes : frame.length;
    socket.setNoDelay(true);
    for (let offset = 0; offset < frame.length && !socket.destroyed; offset += size) {
      if (offset > 0) await new Promise((resolve) => setTimeout(resolve, 2));
      socket.write(frame.subarray(offset, offset + size));
    }
  }

  /** The bytes to send back for `message`, or null for no reply. */
  private reply(message: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let query: Packet;
    try {
      query = decode(message);
    } catch {
      return null;
    }
    const question = query.questions?.[0];
    const id = query.id ?? 0;
    if (!question) return null;
    this.queries.push({ transport, id, name: question.name, type: question.type });

    // dns-packet has no rcode field on encode: the RCODE is the low 4 bits of the flags.
    const baseFlags = RECURSION_AVAILABLE | ((query.flags ?? 0) & RECURSION_DESIRED);
    const response = (fields: { rcode?: number; flags?: number; questions?: Question[]; answers?: Answer[] } = {}) =>
      encode({
        type: 'response',
        id,
        questions: fields.questions ?? [question],
        answers: fields.answers ?? [],
        flags: baseFlags | (fields.flags ?? 0) | (fields.rcode ?? 0),
      });

    switch (this.mode) {
      case 'answer':
      case 'late':
      case 'lateThenAnswer':
      case 'fromOtherPort':
        return response({ answers: this.answersFor(question.name, question.type) });
      case 'nxdomain':
        return response({ rcode: NXDOMAIN });
      case 'servfail':
        return response({ rcode: SERVFAIL });
      case 'refused':
        return response({ rcode: REFUSED });
      case 'formerr':
        return response({ rcode: FORMERR });
      case 'timeout':
        return null;
      case 'truncate':
      case 'truncateThenCut':
        return transport === 'udp'
          ? response({ flags: TRUNCATED_RESPONSE })
          : response({ answers: this.answersFor(question.name, question.type) });
      case 'garbage': {
        const bytes = randomBytes(64);
        if (bytes.readUInt16BE(0) === id) bytes.writeUInt16BE((id + 1) & 0xffff, 0);
        return bytes;
      }
      case 'corruptRecords': {
        const header = response({ answers: this.answersFor(question.name, question.type) }).subarray(0, 12);
        return Buffer.concat([header, randomBytes(64)]);
      }
      case 'wrongId': {
        const reply = response({ answers: this.answersFor(question.name, question.type) });
        reply.writeUInt16BE((id + 1) & 0xffff, 0);
        return reply;
      }
      case 'wrongQuestion':
        return response({
          questions: [{ ...question, name: `not-${question.name}` }],
          answers: this.answersFor(question.name, question.type),
        });
      case 'inflatedCounts': {
        const reply = response({ answers: this.answersFor(question.name, question.type) });
        for (const offset of [6, 8, 10]) reply.writeUInt16BE(0xffff, offset);
        return reply;
      }
    }
  }

  private answersFor(name: string, type: string): Answer[] {
    if (type !== 'A' && type !== 'AAAA' && type !== 'NS') return [];
    return (this.records[type] ?? []).map((data) => ({ type, name, ttl: TTL, class: 'IN', data }) as Answer);
  }
}
