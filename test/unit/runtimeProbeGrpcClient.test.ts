import { mkdtempSync, rmSync } from 'node:fs';
import { type Http2Server, type ServerHttp2Session, type ServerHttp2Stream, createServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../agent/probes/grpcProtobuf.js';
import { GrpcDeadlineError, GrpcProtocolError, GrpcStatusError, GrpcUnixClient } from '../../agent/probes/grpcUnixClient.js';
import { RuntimeProbe } from '../../agent/probes/runtimeProbe.js';

/**
 * The gRPC client's defences, against a node:http2 server on a unix socket that answers each
 * call as the test tells it to, malformed replies included (a real runtime never sends those;
 * the real-runtime cases are test/integration/runtimeProbe.test.ts, against containerd).
 */
type Answer = (stream: ServerHttp2Stream, request: Buffer, headers: Record<string, unknown>) => void;

const dir = mkdtempSync(join(tmpdir(), 'nodepulse-grpc-'));
const socketPath = join(dir, 'grpc.sock');
let server: Http2Server;
let answer: Answer;
let sessions = 0;
const serverSessions = new Set<ServerHttp2Session>();
const clients: GrpcUnixClient[] = [];

function framed(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** An OK reply: headers, one message, grpc-status 0 in the trailers. */
const ok =
  (message: Buffer): Answer =>
  (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(framed(message));
  };

function client(): GrpcUnixClient {
  const c = new GrpcUnixClient(socketPath);
  clients.push(c);
  return c;
}

const call = (c: GrpcUnixClient, options: { timeoutMs?: number; signal?: AbortSignal; maxReplyBytes?: number } = {}) =>
  c.unary('/test.Service/Method', Buffer.from('ping'), { timeoutMs: 5000, signal: new AbortController().signal, maxReplyBytes: 1024, ...options });

beforeAll(async () => {
  server = createServer();
  server.on('session', (session) => {
    sessions++;
    serverSessions.add(session);
    session.on('close', () => serverSessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => answer(stream, Buffer.concat(chunks), headers));
    stream.on('error', () => undefined);
  });
  await new Promise<void>((done) => server.listen(socketPath, done));
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  // The probes' sessions stay open (a probe lives as long as the agent); the server ends them.
  for (const session of serverSessions) session.destroy();
  await new Promise((done) => server.close(done));
  rmSync(dir, { recursive: true, force: true });
});

describe('unary gRPC over a unix socket', () => {
  it('sends the framed request with its deadline and reads the reply, over one session for many calls', async () => {
    let seen: { request: Buffer; headers: Record<string, unknown> } | undefined;
    answer = (stream, request, headers) => {
      seen = { request, headers };
      ok(encodeMessage([[1, 'pong']]))(stream, request, headers);
    };
    const before = sessions;
    const c = client();
    for (let i = 0; i < 3; i++) expect(await call(c, { timeoutMs: 1234 })).toEqual(encodeMessage([[1, 'pong']]));
    expect(sessions - before).toBe(1);
    expect(seen?.request).toEqual(framed(Buffer.from('ping')));
    expect(seen?.headers).toMatchObject({ ':path': '/test.Service/Method', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '1234m' });
  });

  it('makes a new session when the runtime closed the old one (a restart)', async () => {
    answer = ok(Buffer.from([]));
    const c = client();
    await call(c);
    const before = sessions;
    answer = (stream) => stream.session?.destroy();
    await expect(call(c)).rejects.toThrow();
    answer = ok(encodeMessage([[1, 'back']]));
    expect(await call(c)).toEqual(encodeMessage([[1, 'back']]));
    expect(sessions - before).toBe(1);
  });

  it('reports a gRPC error status with its code and percent-decoded message, also as headers alone (trailers-only)', async () => {
    answer = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '12', 'grpc-message': 'unknown service runtime.v1.RuntimeService%3A try v1alpha2' }));
      stream.end();
    };
    const error = await call(client()).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(GrpcStatusError);
    expect((error as GrpcStatusError).code).toBe(12);
    expect((error as Error).message).toBe('/test.Service/Method failed: UNIMPLEMENTED: unknown service runtime.v1.RuntimeService: try v1alpha2');
    answer = (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'starting' }, { endStream: true });
    await expect(call(client())).rejects.toThrow('/test.Service/Method failed: UNAVAILABLE: starting');
  });

  it('refuses replies that are not well-formed gRPC: no grpc-status, truncated, two messages, compressed, not gRPC, too large', async () => {
    const cases: Array<[string, Answer, RegExp]> = [
      [
        'no grpc-status',
        (stream) => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
          stream.end(framed(Buffer.from('x')));
        },
        /ended without a grpc-status trailer/,
      ],
      [
        'truncated',
        (stream) => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(framed(Buffer.from('0123456789')).subarray(0, 8));
        },
        /truncated: its message says 10 bytes, 3 arrived/,
      ],
      [
        'two messages',
        (stream) => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(Buffer.concat([framed(Buffer.from('a')), framed(Buffer.from('b'))]));
        },
        /more than one message/,
      ],
      [
        'compressed',
        (stream) => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(Buffer.from([1, 0, 0, 0, 0]));
        },
        /compressed \(flag 1\)/,
      ],
      [
        'not gRPC',
        (stream) => {
          stream.respond({ ':status': 404, 'content-type': 'text/plain' });
          stream.end('not found');
        },
        /answered HTTP 404, expected 200/,
      ],
      ['too large', ok(Buffer.alloc(4096)), /larger than 1024 bytes/],
    ];
    for (const [name, reply, expected] of cases) {
      answer = reply;
      const error = await call(client()).catch((err: unknown) => err);
      expect(error, name).toBeInstanceOf(GrpcProtocolError);
      expect((error as Error).message, name).toMatch(expected);
    }
  });

  it('gives up at the deadline when the runtime never answers, and starts the next call on a new session', async () => {
    answer = () => undefined;
    const c = client();
    const before = sessions;
    const error = await call(c, { timeoutMs: 100 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(GrpcDeadlineError);
    expect((error as Error).message).toBe('/test.Service/Method did not answer within 100 ms');
    answer = ok(Buffer.from([]));
    await call(c);
    expect(sessions - before).toBe(2);
  });

  it("rejects with the caller's reason when the caller cancels", async () => {
    answer = () => undefined;
    const controller = new AbortController();
    const pending = call(client(), { signal: controller.signal });
    controller.abort(new Error('sample cancelled'));
    await expect(pending).rejects.toThrow('sample cancelled');
  });

  it('fails with the errno of the connection when nothing is at the socket path', async () => {
    const error = await call(new GrpcUnixClient(join(dir, 'absent.sock'))).catch((err: unknown) => err);
    expect((error as { code?: string }).code).toBe('ENOENT');
  });
});

describe('runtime probe verdicts a real containerd will not give on demand', () => {
  const config = { enabled: true, socketPath, timeoutMs: 2000, intervalSeconds: 10, failureThreshold: 3, recoveryThreshold: 2 };
  const condition = (type: string, status: boolean, reason = '', message = '') => encodeMessage([[1, type], [2, status], [3, reason], [4, message]]);
  const replies = (conditions: Buffer[]): Answer => (stream, request, headers) => {
    const status = encodeMessage([[1, encodeMessage(conditions.map((c) => [1, c] as const))]]);
    const version = encodeMessage([[1, '0.1.0'], [2, 'fake-runtime'], [3, 'v9'], [4, 'v1']]);
    ok(headers[':path'] === '/runtime.v1.RuntimeService/Status' ? status : version)(stream, request, headers);
  };

  it('reports ContainerRuntimeNotReady with the runtime\'s own reason when RuntimeReady is false, before the network', async () => {
    answer = replies([condition('RuntimeReady', false, 'ContainerdNotReady', 'shim failed'), condition('NetworkReady', false, 'NetworkPluginNotReady', 'no cni')]);
    const probe = new RuntimeProbe(config);
    const result = await probe.run(new AbortController().signal);
    expect(result).toMatchObject({ healthy: false, reason: 'ContainerRuntimeNotReady', figures: { runtimeName: 'fake-runtime', runtimeReady: false, networkReady: false } });
    expect(result.message).toMatch(/^RuntimeReady=false \(ContainerdNotReady: shim failed\), NetworkReady=false \(NetworkPluginNotReady: no cni\); fake-runtime v9 at /);
  });

  it('reports ContainerRuntimeNotReady when the runtime does not report RuntimeReady at all (the kubelet treats it so)', async () => {
    answer = replies([condition('NetworkReady', true)]);
    const result = await new RuntimeProbe(config).run(new AbortController().signal);
    expect(result).toMatchObject({ healthy: false, reason: 'ContainerRuntimeNotReady' });
    expect(result.message).toMatch(/^did not report RuntimeReady, NetworkReady=true;/);
  });

  it('reports ContainerRuntimeStatusFailed, naming the decode error, for a reply that is not a StatusResponse', async () => {
    answer = (stream, request, headers) => ok(Buffer.from([0x0a, 0x05, 0x0a]))(stream, request, headers);
    const result = await new RuntimeProbe(config).run(new AbortController().signal);
    expect(result).toMatchObject({ healthy: false, reason: 'ContainerRuntimeStatusFailed' });
    expect(result.message).toMatch(/gave no usable status: truncated field 1: needs 5 bytes at byte 2, 1 left/);
  });
});
