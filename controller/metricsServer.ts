import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControllerMetrics } from './metrics.js';

/**
 * The controller's own small HTTP endpoint: /metrics (Prometheus text), /healthz (the process
 * serves), /readyz (its caches are synced and current; a follower is ready too, so a rollout
 * proceeds; a replica whose watches have been down too long is not, and says why), and what
 * `pages` serves (the fleet page). GET only; nothing else is served.
 */
export async function startMetricsServer(
  metrics: ControllerMetrics,
  options: {
    address: string;
    port: number;
    notReady: () => string | undefined;
    /** Read-only pages on the same port: true when it served the path. */
    pages?: (path: string, req: IncomingMessage, res: ServerResponse) => boolean;
  },
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const why = options.notReady();
      res.writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(why === undefined ? 'ready\n' : `${why}\n`);
      return;
    }
    if (options.pages?.(path ?? '/', req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.address, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
