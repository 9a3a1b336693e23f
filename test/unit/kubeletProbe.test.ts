import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { KubeletProbe } from '../../agent/probes/kubeletProbe.js';

const kubeletConfig = (url: string, timeoutMs = 2000) =>
  agentConfigSchema.parse({ probes: { kubelet: { url, timeoutMs } } }).probes.kubelet;
const signal = () => new AbortController().signal;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Listens on an ephemeral port of 127.0.0.1; tests never reach off loopback. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

// A stand-in kubelet healthz whose behaviour each test sets through `handler`.
describe('kubelet probe', () => {
  let handler: Handler;
  let server: Server;
  let url: string;

  beforeEach(async () => {
    server = createServer((req, res) => handler(req, res));
    url = `http://127.0.0.1:${await listen(server)}/healthz`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is healthy when healthz answers 200 ok, and reports the latency', async () => {
    const paths: string[] = [];
    handler = (req, res) => {
      paths.push(req.url ?? '');
      res.end('ok');
    };
    const r = await new KubeletProbe(kubeletConfig(url)).run(signal());
    expect(r).toMatchObject({ probe: 'kubelet', healthy: true, reason: 'KubeletHealthy', figures: { url, status: 200 } });
    expect(paths).toEqual(['/healthz']);
    expect(r.figures.latencyMs).toBeGreaterThanOrEqual(0);
    expect(r.figures.latencyMs).toBeLessThan(2000);
  });

  it('reports KubeletTimeout when healthz drips its answer past the timeout', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write('o')), 50);
    };
    const r = await new KubeletProbe(kubeletConfig(url, 300)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletTimeout', message: `${url} did not answer within 300 ms` });
  });

  it('reports KubeletUnhealthy with the status and body when healthz answers 500', async () => {
    handler = (_req, res) => {
      res.statusCode = 500;
      res.end('[-]syncloop failed: reason withheld\nhealthz check failed\n');
    };
    const r = await new KubeletProbe(kubeletConfig(url)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletUnhealthy', figures: { status: 500 } });
    expect(r.message).toContain('answered HTTP 500 with body "[-]syncloop failed: reason withheld healthz check failed"');
  });

  it('reports KubeletUnhealthy when healthz answers 200 with something other than ok', async () => {
    handler = (_req, res) => res.end('<html>login</html>');
    const r = await new KubeletProbe(kubeletConfig(url)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletUnhealthy', figures: { status: 200 } });
  });

  it('does not follow a redirect away from healthz', async () => {
    let hits = 0;
    handler = (_req, res) => {
      hits += 1;
      res.writeHead(302, { location: '/elsewhere' }).end();
    };
    const r = await new KubeletProbe(kubeletConfig(url)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletUnhealthy', figures: { status: 302 } });
    expect(hits).toBe(1);
  });

  it('reads only the start of an oversized body', async () => {
    handler = (_req, res) => {
      res.statusCode = 503;
      res.end('x'.repeat(5 * 1024 * 1024));
    };
    const r = await new KubeletProbe(kubeletConfig(url)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletUnhealthy', figures: { status: 503 } });
    expect(r.message.length).toBeLessThan(400);
  });

  it('reports KubeletTimeout when healthz never answers', async () => {
    handler = () => undefined;
    const r = await new KubeletProbe(kubeletConfig(url, 150)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletTimeout', message: `${url} did not answer within 150 ms` });
    expect(r.figures.status).toBeNull();
    expect(r.figures.latencyMs).toBeGreaterThanOrEqual(140);
  });

  it('reports KubeletTimeout when healthz sends headers but never finishes the body', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '2' });
      res.write('o');
    };
    const r = await new KubeletProbe(kubeletConfig(url, 150)).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'KubeletTimeout' });
  });

  it('reports KubeletUnreachable when nothing listens on the port', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const closedUrl = `http://127.0.0.1:${port}/healthz`;
    const r = await new KubeletProbe(kubeletConfig(closedUrl)).run(signal());
    expect(r).toMatchObject({
      healthy: false,
      reason: 'KubeletUnreachable',
      message: `${closedUrl} is unreachable: ECONNREFUSED`,
      figures: { status: null },
    });
  });

  it('rejects rather than blaming the kubelet when the loop cancels the sample', async () => {
    handler = () => undefined;
    const controller = new AbortController();
    const run = new KubeletProbe(kubeletConfig(url, 5000)).run(controller.signal);
    setTimeout(() => controller.abort(new Error('shutting down')), 50);
    await expect(run).rejects.toThrow('shutting down');
  });
});
