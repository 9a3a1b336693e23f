import { createServer, type Server } from 'node:http';

/** A kubelet healthz endpoint on 127.0.0.1 that answers `ok`, for the agent's kubelet probe. */
export class KubeletStandIn {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<KubeletStandIn> {
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
      res.end(req.url === '/healthz' ? 'ok' : 'not found');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as { port: number };
    return new KubeletStandIn(server, `http://127.0.0.1:${port}/healthz`);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
