import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { http } from '../nodeHttp.js';
import type { Logger } from 'pino';
import type { NodeCondition, ProblemEvent } from '../conditions/conditionEngine.js';
import type { ProbeResult } from '../probes/probe.js';

/** What the endpoint shows; the agent supplies it, the server only renders it. */
export interface HealthSource {
  nodeName: string;
  conditions(): NodeCondition[];
  results(): ProbeResult[];
  /** Epoch ms of the probe loop's last completed sample. */
  lastProgressAt(): number;
  /** Reasons the agent is not ready yet (empty when ready). */
  notReadyReasons(): string[];
  metrics(): Promise<{ contentType: string; body: string }>;
}

/** Extra read-only routes (e.g. the konnectivity probe's echo), by exact path prefix. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, rest: string) => void;

export interface HealthServerOptions {
  address: string;
  port: number;
  stallMs: number;
  maxStreamClients?: number;
  routes?: Record<string, RouteHandler>;
}

export interface StreamMessage {
  type: 'snapshot' | 'transition' | 'event';
  node: string;
  conditions?: ReturnType<typeof renderCondition>[];
  event?: ReturnType<typeof renderEvent>;
}

const streamPath = '/stream';

/** The endpoint cannot bind: a config or environment problem for the operator, not a crash. */
export class ListenError extends Error {
  override name = 'ListenError';
}

/**
 * The node-local endpoint: /healthz, /readyz, /conditions, /metrics and a WebSocket stream of
 * condition transitions at /stream. Read-only: anything but GET/HEAD without a body is refused.
 */
export class HealthServer {
  private readonly server: Server;
  /** Loaded on the first stream client: most nodes never have one, and ws costs ~5 MiB. */
  private wss: Promise<WebSocketServer> | undefined;
  private readonly clients = new Set<WebSocket>();
  /** Upgrades accepted but not yet connected: they count against the client limit too. */
  private upgrading = 0;
  private readonly maxClients: number;

  constructor(
    private readonly source: HealthSource,
    private readonly options: HealthServerOptions,
    private readonly log: Logger,
  ) {
    this.maxClients = options.maxStreamClients ?? 32;
    this.server = http.createServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) =>
      this.handle(req, res),
    );
    this.server.keepAliveTimeout = 5_000;
    this.server.on('upgrade', (req, socket, head) => {
      let path = '';
      try {
        path = new URL(req.url ?? '/', 'http://local').pathname;
      } catch {
        // a malformed path is answered like an unknown one
      }
      if (path !== streamPath || this.clients.size + this.upgrading >= this.maxClients) {
        socket.end(`HTTP/1.1 ${path !== streamPath ? '404 Not Found' : '503 Service Unavailable'}\r\nConnection: close\r\n\r\n`);
        return;
      }
      // Released once: when the client connects, or when a failed handshake closes the socket.
      this.upgrading += 1;
      let counted = true;
      const release = () => {
        if (counted) this.upgrading -= 1;
        counted = false;
      };
      socket.once('close', release);
      this.streamServer().then(
        (wss) =>
          wss.handleUpgrade(req, socket, head, (ws) => {
            release();
            this.onStreamClient(ws);
          }),
        (err: unknown) => {
          release();
          this.log.error({ err }, 'cannot start the stream');
          socket.end('HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n');
        },
      );
    });
    this.server.on('clientError', (_err, socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => {
        const where = `${this.options.address}:${this.options.port}`;
        const why =
          err.code === 'EADDRINUSE'
            ? `${where} is already in use (another agent on this node?)`
            : err.code === 'EADDRNOTAVAIL'
              ? `${where} is not an address of this machine`
              : `cannot listen on ${where}: ${err.message}`;
        reject(new ListenError(`server: ${why}; set server.address / server.port`));
      });
      this.server.listen(this.options.port, this.options.address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.log.info({ address: address.address, port: address.port }, 'health endpoint listening');
    return address;
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.terminate();
    (await this.wss)?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Sends a transition or temporary problem to every stream client. */
  broadcast(condition: NodeCondition, events: readonly ProblemEvent[]): void {
    if (this.clients.size === 0) return;
    for (const event of events) {
      const message: StreamMessage = {
        type: event.kind === 'transition' ? 'transition' : 'event',
        node: this.source.nodeName,
        conditions: [renderCondition(condition)],
        event: renderEvent(event),
      };
      const text = JSON.stringify(message);
      for (const client of this.clients) if (client.readyState === client.OPEN) client.send(text);
    }
  }

  private streamServer(): Promise<WebSocketServer> {
    this.wss ??= import('ws').then(({ WebSocketServer }) => new WebSocketServer({ noServer: true, maxPayload: 1024 }));
    return this.wss;
  }

  private onStreamClient(socket: WebSocket): void {
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    const snapshot: StreamMessage = {
      type: 'snapshot',
      node: this.source.nodeName,
      conditions: this.source.conditions().map(renderCondition),
    };
    socket.send(JSON.stringify(snapshot));
    // The stream is one-way; a client that talks back is closed (policy violation).
    socket.on('message', () => socket.close(1008, 'read-only stream'));
    socket.on('error', (err) => this.log.debug({ err }, 'stream client error'));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return this.reply(res, 405, { error: 'read-only endpoint: use GET' }, { Allow: 'GET, HEAD' });
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding']) {
      return this.reply(res, 413, { error: 'requests to this endpoint carry no body' });
    }
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://local').pathname;
    } catch {
      return this.reply(res, 400, { error: 'malformed request path' });
    }
    try {
      this.route(path, req, res);
    } catch (err) {
      this.log.error({ err, path }, 'health endpoint handler failed');
      if (!res.headersSent) this.reply(res, 500, { error: 'internal error' });
    }
  }

  private route(path: string, req: IncomingMessage, res: ServerResponse): void {
    switch (path) {
      case '/healthz': {
        const idleMs = Date.now() - this.source.lastProgressAt();
        if (idleMs > this.options.stallMs) {
          return this.reply(res, 503, { status: 'stalled', message: `no probe has completed for ${Math.round(idleMs / 1000)}s` });
        }
        return this.reply(res, 200, { status: 'ok' });
      }
      case '/readyz': {
        const reasons = this.source.notReadyReasons();
        return reasons.length === 0 ? this.reply(res, 200, { status: 'ready' }) : this.reply(res, 503, { status: 'not ready', reasons });
      }
      case '/conditions':
        return this.reply(res, 200, {
          node: this.source.nodeName,
          conditions: this.source.conditions().map(renderCondition),
          probes: Object.fromEntries(this.source.results().map((r) => [r.probe, renderResult(r)])),
        });
      case '/metrics':
        this.source.metrics().then(
          ({ contentType, body }) => {
            res.writeHead(200, { 'Content-Type': contentType });
            res.end(req.method === 'HEAD' ? undefined : body);
          },
          (err: unknown) => {
            this.log.error({ err }, 'metrics collection failed');
            this.reply(res, 500, { error: 'metrics collection failed' });
          },
        );
        return;
    }
    for (const [prefix, handler] of Object.entries(this.options.routes ?? {})) {
      if (path.startsWith(prefix)) return handler(req, res, path.slice(prefix.length));
    }
    this.reply(res, 404, { error: `no such path; try /healthz, /readyz, /conditions, /metrics or ${streamPath}` });
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : `${JSON.stringify(body, null, 2)}\n`);
  }
}

export function renderCondition(c: NodeCondition) {
  return { type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: new Date(c.lastTransitionTime).toISOString() };
}

export function renderEvent(e: ProblemEvent) {
  return { kind: e.kind, severity: e.severity, conditionType: e.conditionType, reason: e.reason, message: e.message, at: new Date(e.at).toISOString() };
}

function renderResult(r: ProbeResult) {
  return { healthy: r.healthy, reason: r.reason, message: r.message, at: new Date(r.at).toISOString(), durationMs: r.durationMs, figures: r.figures };
}
