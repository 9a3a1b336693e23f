import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { pino } from 'pino';
import WebSocket from 'ws';
import type { NodeCondition, ProblemEvent } from '../../agent/conditions/conditionEngine.js';
import { HealthServer, type HealthSource } from '../../agent/server/healthServer.js';
import type { ProbeResult } from '../../agent/probes/probe.js';

const log = pino({ level: 'silent' });
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

async function start(src: HealthSource, stallMs = 60_000): Promise<number> {
  server = new HealthServer(src, { address: '127.0.0.1', port: 0, stallMs, maxStreamClients: 2 }, log);
  return (await server.listen()).port;
}

function call(port: number, path: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: body ? { 'Content-Length': Buffer.byteLength(body) } : {} }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

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
    expect(await call(port, '/metrics')).toEqual({ status: 200, body: 'problem_gauge 0\n' });
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
