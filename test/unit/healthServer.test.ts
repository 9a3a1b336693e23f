import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { jsonLogger } from '../../common/log.js';
import WebSocket from 'ws';
import type { NodeCondition, ProblemEvent } from '../../agent/conditions/conditionEngine.js';
import { HealthServer, type EndpointLimits, type HealthSource } from '../../agent/server/healthServer.js';
import type { ProbeResult } from '../../agent/probes/probe.js';

const log = jsonLogger({ level: 'silent' });
const condition: NodeCondition = { type: 'DNSProblem', status: 'False', reason: 'DNSHealthy', message: 'all good', lastTransitionTime: 0 };
const dnsResult: ProbeResult = { probe: 'dns', at: 0, durationMs: 3, healthy: true, reason: 'DNSHealthy', message: 'ok', figures: { latencyMs: 3 } };

function source(overrides: Partial<HealthSource> = {}): HealthSource {
  return {
    nodeName: 'node-a',
    conditions: () => [condition],
    results: () => [dnsResult],
    lastProgressAt: () => Date.now(),
    notReadyReasons: () => [],
    metrics: async () => ({ contentType: 'text/plain', body: 'problem_gauge 0\n' }),
    ...overrides,
  };
}

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(src: HealthSource, stallMs = 60_000, limits: Partial<EndpointLimits> = {}, podAddress?: string): Promise<number> {
  server = new HealthServer(src, { address: '127.0.0.1', port: 0, stallMs, maxStreamClients: 2, limits, podAddress, routes: { '/echo/': echo } }, log);
  return (await server.listen()).port;
}

const echo = (_req: unknown, res: import('node:http').ServerResponse, rest: string) => res.end(`echo ${rest}`);

interface Reply {
  status: number;
  body: string;
  headers: import('node:http').IncomingHttpHeaders;
}

function call(port: number, path: string, method = 'GET', body?: string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path, method, agent: false, headers: { ...(body ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('upgrade', () => reject(new Error(`${path}: the server switched protocols`)));
    req.on('error', reject);
    req.end(body);
  });
}

const open: Socket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.destroy();
});

/** A client that connects, optionally writes `bytes`, and never reads a byte of the answer. */
function neverReads(port: number, bytes = '', localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress }, () => {
      socket.pause();
      if (bytes) socket.write(bytes);
      resolve(socket);
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
    open.push(socket);
  });
}

/** Waits (polling, generously bounded) until `check` holds; the bound only catches a hang. */
async function until(what: string, check: () => boolean, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const stats = () => (server as HealthServer).connectionStats();

describe('node-local health endpoint', () => {
  it('serves the current conditions and the last figures of every probe', async () => {
    const port = await start(source());
    const res = await call(port, '/conditions');
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.node).toBe('node-a');
    expect(body.conditions[0]).toMatchObject({ type: 'DNSProblem', status: 'False', lastTransitionTime: '1970-01-01T00:00:00.000Z' });
    expect(body.probes.dns.figures).toEqual({ latencyMs: 3 });
  });

  it('healthz fails once the probe loop has made no progress for the stall period', async () => {
    let last = Date.now();
    const port = await start(source({ lastProgressAt: () => last }), 1000);
    expect((await call(port, '/healthz')).status).toBe(200);
    last = Date.now() - 5000;
    const stalled = await call(port, '/healthz');
    expect(stalled.status).toBe(503);
    expect(stalled.body).toContain('no probe has completed');
  });

  it('readyz says why the agent is not ready', async () => {
    let reasons = ['dns probe has not completed a sample yet'];
    const port = await start(source({ notReadyReasons: () => reasons }));
    const notReady = await call(port, '/readyz');
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body).reasons).toEqual(reasons);
    reasons = [];
    expect((await call(port, '/readyz')).status).toBe(200);
  });

  it('serves Prometheus metrics', async () => {
    const port = await start(source());
    expect(await call(port, '/metrics')).toMatchObject({ status: 200, body: 'problem_gauge 0\n' });
  });

  it('is read-only: refuses writes and request bodies', async () => {
    const port = await start(source());
    expect((await call(port, '/conditions', 'POST')).status).toBe(405);
    expect((await call(port, '/conditions', 'GET', 'x'.repeat(100))).status).toBe(413);
    expect((await call(port, '/nope')).status).toBe(404);
  });

  it('streams a snapshot on connect and then every transition over WebSocket', async () => {
    const port = await start(source());
    const ws = new WebSocket(`ws://127.0.0.1:${port}/stream`);
    const messages: any[] = [];
    const got = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (messages.length >= n ? resolve() : setTimeout(check, 10));
        check();
      });
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    await got(1);
    expect(messages[0]).toMatchObject({ type: 'snapshot', node: 'node-a', conditions: [{ type: 'DNSProblem' }] });
    const event: ProblemEvent = { kind: 'transition', severity: 'Warning', conditionType: 'DNSProblem', reason: 'ClusterDNSTimeout', message: 'timed out', at: 5 };
    server?.broadcast({ ...condition, status: 'True', reason: 'ClusterDNSTimeout' }, [event]);
    await got(2);
    expect(messages[1]).toMatchObject({ type: 'transition', event: { reason: 'ClusterDNSTimeout' }, conditions: [{ status: 'True' }] });
    ws.close();
  });

  it('says which address is taken instead of crashing when the port is in use', async () => {
    const port = await start(source());
    const second = new HealthServer(source(), { address: '127.0.0.1', port, stallMs: 1000 }, log);
    await expect(second.listen()).rejects.toThrow(`server: 127.0.0.1:${port} is already in use (another agent on this node?); set server.address / server.port`);
  });

  it('limits the number of stream clients', async () => {
    const port = await start(source());
    const open = (): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/stream`);
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const a = await open();
    const b = await open();
    await expect(open()).rejects.toThrow(/503/);
    a.close();
    b.close();
  });
});

describe('node-local endpoint against bad clients', () => {
  it('destroys a connection whose request headers are late, even when the client never reads', async () => {
    const port = await start(source(), 60_000, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    await neverReads(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    await neverReads(port);
    expect(stats().open).toBe(2);
    await until('both sockets closed by the server', () => stats().open === 0);
  });

  it('holds at most the connection cap of slowloris clients that never read, and /healthz still answers', async () => {
    const port = await start(source(), 60_000, { maxConnections: 8, maxPerSource: 8 });
    const slow = await Promise.all(Array.from({ length: 30 }, () => neverReads(port, 'GET /conditions HTTP/1.1\r\n')));
    // A slowloris keeps trickling header bytes; the newest always replace the oldest.
    for (const socket of slow) socket.write('X-Slow: 1\r\n');
    await until('the flood to reach the cap', () => stats().refused + stats().evicted >= 22);
    expect(stats().open).toBeLessThanOrEqual(8);
    for (let i = 0; i < 5; i++) {
      const res = await call(port, '/healthz');
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    }
    expect(stats().open).toBeLessThanOrEqual(8);
  });

  it('lets /healthz in while every slot is held by clients that asked and never read the answer', async () => {
    // 4 MiB answers, pipelined, never read: the socket buffers fill and the answers stay unfinished.
    const big = { ...condition, message: 'x'.repeat(4 * 1024 * 1024) };
    const port = await start(source({ conditions: () => [big] }), 60_000, { maxConnections: 4, maxPerSource: 4 });
    const pipelined = 'GET /conditions HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4);
    await Promise.all(Array.from({ length: 4 }, () => neverReads(port, pipelined)));
    await until('4 held', () => stats().open === 4);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await call(port, '/healthz')).status).toBe(200);
    expect(stats()).toMatchObject({ evicted: 1, refused: 0 });
  });

  it('cuts off a client that pipelines more requests than the limit, and answers one that stays within it', async () => {
    let collections = 0;
    const slowMetrics = async () => {
      collections += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return { contentType: 'text/plain', body: 'problem_gauge 0\n' };
    };
    const port = await start(source({ metrics: slowMetrics }), 60_000, { maxPipelined: 4 });
    const within = await rawExchange(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3) + 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(within.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(4);
    // Scrapes that arrive together share one collection.
    expect(collections).toBe(1);
    await neverReads(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200));
    await until('the pipelining client cut off', () => stats().cutOff === 1 && stats().open === 0);
  });

  it('caps one source before the whole listener, so another client still gets a slot', async () => {
    const port = await start(source(), 60_000, { maxConnections: 10, maxPerSource: 3 });
    for (let i = 0; i < 6; i++) await neverReads(port, '', '127.0.0.1');
    for (let i = 0; i < 3; i++) await neverReads(port, '', '127.0.0.2');
    // 127.0.0.1's three oldest gave way to its three newest; 127.0.0.2 lost nothing.
    await until('3 from each source held', () => stats().open === 6);
    expect(stats()).toMatchObject({ evicted: 3, refused: 0 });
    expect((await call(port, '/healthz', 'GET', undefined, {}, '127.0.0.1')).status).toBe(200);
  });

  it('closes idle keep-alive connections and ends a connection after its request budget', async () => {
    const port = await start(source(), 60_000, { keepAliveTimeoutMs: 200, maxRequestsPerSocket: 2 });
    const socket = await neverReads(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('the idle keep-alive connection closed', () => stats().open === 0);
    expect(socket.destroyed).toBe(false);
    const replies = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
    expect(replies).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 200 OK[\s\S]*Connection: close/i);
  });

  it('answers a request with an Upgrade it does not serve (curl --http2: h2c) as plain HTTP/1.1', async () => {
    const port = await start(source());
    const h2c = { Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAAQCAAAAAAIAAAAA' };
    const res = await call(port, '/healthz', 'GET', undefined, h2c);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    const ws = await call(port, '/conditions', 'GET', undefined, { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' });
    expect(ws.status).toBe(200);
    expect(JSON.parse(ws.body).node).toBe('node-a');
  });

  it('says how to connect when /stream is fetched without a WebSocket upgrade', async () => {
    const port = await start(source());
    const res = await call(port, '/stream');
    expect(res.status).toBe(426);
    expect(res.headers.upgrade).toBe('websocket');
    expect(JSON.parse(res.body).error).toBe(`/stream is a WebSocket stream: connect with a WebSocket client, e.g. websocat ws://127.0.0.1:${port}/stream`);
  });

  it('drops a stream client that stopped reading instead of buffering for it, and keeps the one that reads', async () => {
    const port = await start(source(), 60_000, { maxStreamBacklogBytes: 64 * 1024 });
    const connectStream = async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/stream`);
      await new Promise((resolve) => ws.once('message', resolve));
      return ws;
    };
    const reader = await connectStream();
    let read = 0;
    reader.on('message', () => (read += 1));
    const stalled = await connectStream();
    (stalled as unknown as { _socket: Socket })._socket.pause();
    const long = { ...condition, message: 'x'.repeat(4096) };
    const event: ProblemEvent = { kind: 'temporary', severity: 'Warning', conditionType: 'DNSProblem', reason: 'R', message: 'm', at: 0 };
    for (let i = 0; i < 20_000 && stats().streams > 1; i++) {
      server?.broadcast(long, [event]);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(stats().streams).toBe(1);
    expect(reader.readyState).toBe(WebSocket.OPEN);
    expect(read).toBeGreaterThan(100);
    reader.close();
    stalled.terminate();
  });

  it('serves only /healthz, /readyz, /metrics and the echo on the pod address; conditions and the stream stay local', async () => {
    const port = await start(source(), 60_000, {}, '127.0.0.2');
    const pod = (path: string) => call(port, path, 'GET', undefined, {}, '127.0.0.2');
    expect((await pod('/healthz')).status).toBe(200);
    expect((await pod('/readyz')).status).toBe(200);
    expect((await pod('/metrics')).body).toBe('problem_gauge 0\n');
    expect((await pod('/echo/abc')).body).toBe('echo abc');
    for (const path of ['/conditions', '/stream']) {
      const res = await pod(path);
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body).error).toContain(`are on 127.0.0.1:${port}`);
    }
    expect((await call(port, '/conditions')).status).toBe(200);
    expect((await call(port, '/echo/abc')).body).toBe('echo abc');
  });
});

/** Writes `text` on a fresh connection and returns everything the server sends until it closes. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(text));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
    setTimeout(() => resolve(received), 5_000).unref();
  });
}
