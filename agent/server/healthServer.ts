import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { http } from '../../common/nodeHttp.js';
import type { Logger } from '../../common/log.js';
import type { NodeCondition, ProblemEvent } from '../conditions/conditionEngine.js';
import type { ProbeResult } from '../probes/probe.js';
import { renderCondition, renderEvent, renderResult } from '../renderState.js';
import { ConnectionGuard, type ConnectionLimits } from './connectionGuard.js';

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
  /**
   * A second listener on this address (the pod's IP; with hostNetwork the node's) and the same
   * port, serving only what others must reach: /healthz and /readyz (the kubelet's probes),
   * /metrics (a PodMonitor scrapes the pod IP) and the extra `routes` (the konnectivity echo,
   * which the API server's pod proxy calls). /conditions and the stream then stay on `address`.
   */
  podAddress?: string;
  stallMs: number;
  maxStreamClients?: number;
  limits?: Partial<EndpointLimits>;
  routes?: Record<string, RouteHandler>;
}

/** What one bad client can hold; every figure per listener. */
export interface EndpointLimits extends ConnectionLimits {
  /** The request headers must be complete this long after the connection or the previous request. */
  headersTimeoutMs: number;
  /** The whole request must be in by then. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection is closed after this many requests. */
  maxRequestsPerSocket: number;
  /** A connection on which nothing moves (a client that stopped reading mid-answer) is closed after this. */
  idleTimeoutMs: number;
  /** A stream client this far behind (bytes queued for it) is dropped. */
  maxStreamBacklogBytes: number;
}

export const defaultEndpointLimits: EndpointLimits = {
  maxConnections: 64,
  maxPerSource: 16,
  maxPipelined: 4,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 100,
  idleTimeoutMs: 15_000,
  maxStreamBacklogBytes: 256 * 1024,
};

export interface StreamMessage {
  type: 'snapshot' | 'transition' | 'event';
  node: string;
  conditions?: ReturnType<typeof renderCondition>[];
  event?: ReturnType<typeof renderEvent>;
}

const streamPath = '/stream';
type Scope = 'local' | 'pod';

/** The endpoint cannot bind: a config or environment problem for the operator, not a crash. */
export class ListenError extends Error {
  override name = 'ListenError';
}

/**
 * The node-local endpoint: /healthz, /readyz, /conditions, /metrics and a WebSocket stream of
 * condition transitions at /stream. Read-only: anything but GET/HEAD without a body is refused.
 * Bounded against bad clients: connections capped per listener and per source (connectionGuard.ts),
 * sockets destroyed when their request is late or nothing moves on them, keep-alive bounded in
 * time and requests, stream clients capped and dropped when they stop reading.
 */
export class HealthServer {
  private readonly listeners: Array<{ scope: Scope; address: string; server: Server; guard: ConnectionGuard }> = [];
  /** Loaded on the first stream client: most nodes never have one, and ws costs ~5 MiB. */
  private wss: Promise<WebSocketServer> | undefined;
  private readonly clients = new Set<WebSocket>();
  /** Upgrades accepted but not yet connected: they count against the client limit too. */
  private upgrading = 0;
  private readonly maxClients: number;
  private readonly limits: EndpointLimits;
  /** The main listener's port once bound (the configured one may be 0: any free port). */
  private port: number;
  private metricsInFlight: Promise<{ contentType: string; body: string }> | undefined;

  constructor(
    private readonly source: HealthSource,
    private readonly options: HealthServerOptions,
    private readonly log: Logger,
  ) {
    this.maxClients = options.maxStreamClients ?? 32;
    this.limits = { ...defaultEndpointLimits, ...options.limits };
    this.port = options.port;
    this.listeners.push(this.listener('local', options.address));
    if (options.podAddress) this.listeners.push(this.listener('pod', options.podAddress));
  }

  /** Connections held and turned away so far, over every listener. */
  connectionStats(): { open: number; streams: number; evicted: number; refused: number; cutOff: number } {
    const sum = (pick: (guard: ConnectionGuard) => number) => this.listeners.reduce((n, l) => n + pick(l.guard), 0);
    return {
      open: sum((g) => g.open),
      streams: this.clients.size,
      evicted: sum((g) => g.evicted),
      refused: sum((g) => g.refused),
      cutOff: sum((g) => g.cutOff),
    };
  }

  private listener(scope: Scope, address: string) {
    const limits = this.limits;
    const guard = new ConnectionGuard(limits);
    const server = http.createServer(
      {
        maxHeaderSize: 8192,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        // Node checks the two timeouts above on this period (default 30 s, which lets a slowloris stay 35 s).
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // Any other upgrade (h2c from `curl --http2`, websocket elsewhere) is answered as plain HTTP/1.1.
        shouldUpgradeCallback: (req) => scope === 'local' && isStreamUpgrade(req),
      },
      (req, res) => this.handle(req, res, scope),
    );
    server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    // With no 'timeout' listener Node destroys the socket; ws clears it on the sockets it takes over.
    server.timeout = limits.idleTimeoutMs;
    guard.attach(server);
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Write an answer only between responses; then always destroy: `end` alone would keep the
      // socket (and its descriptor) until a client that never reads chose to close it.
      if (socket.writable && !guard.isServing(socket)) socket.write(clientErrorResponse(err.code));
      socket.destroy();
    });
    if (scope === 'local') server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head, guard));
    return { scope, address, server, guard };
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer, guard: ConnectionGuard): void {
    guard.release(socket);
    if (this.clients.size + this.upgrading >= this.maxClients) {
      socket.end(plainResponse(503, `at most ${this.maxClients} stream clients at once; try again later`));
      socket.destroySoon();
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
        socket.end(plainResponse(500, 'the stream is not available'));
        socket.destroySoon();
      },
    );
  }

  /** Binds every listener (the pod listener on the port the main one got); returns the main one's address. */
  async listen(): Promise<AddressInfo> {
    let port = this.options.port;
    for (const listener of this.listeners) {
      await this.bind(listener.server, listener.address, port, listener.scope === 'pod' ? 'server.podAddress' : 'server.address');
      port = (listener.server.address() as AddressInfo).port;
    }
    const main = this.listeners[0]?.server.address() as AddressInfo;
    this.port = main.port;
    this.log.info(
      { address: main.address, port: main.port, podAddress: this.options.podAddress, limits: this.limits },
      'health endpoint listening',
    );
    return main;
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.terminate();
    (await this.wss)?.close();
    await Promise.all(
      this.listeners.map(({ server }) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }

  /** Sends a transition or temporary problem to every stream client (a monitor's one-off problem has no condition). */
  broadcast(condition: NodeCondition | undefined, events: readonly ProblemEvent[]): void {
    if (this.clients.size === 0) return;
    for (const event of events) {
      const message: StreamMessage = {
        type: event.kind === 'transition' ? 'transition' : 'event',
        node: this.source.nodeName,
        conditions: condition ? [renderCondition(condition)] : [],
        event: renderEvent(event),
      };
      const text = JSON.stringify(message);
      for (const client of this.clients) {
        if (client.readyState !== client.OPEN) continue;
        // A client that stopped reading would otherwise hold every message in our memory.
        if (client.bufferedAmount > this.limits.maxStreamBacklogBytes) client.terminate();
        else client.send(text);
      }
    }
  }

  /** Scrapes that arrive together share one collection: a burst of them costs one. */
  private collectMetrics(): Promise<{ contentType: string; body: string }> {
    this.metricsInFlight ??= this.source.metrics().finally(() => {
      this.metricsInFlight = undefined;
    });
    return this.metricsInFlight;
  }

  private bind(server: Server, address: string, port: number, field: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = `${address}:${port}`;
        const why =
          err.code === 'EADDRINUSE'
            ? `${where} is already in use (another agent on this node?)`
            : err.code === 'EADDRNOTAVAIL'
              ? `${where} is not an address of this machine`
              : `cannot listen on ${where}: ${err.message}`;
        reject(new ListenError(`server: ${why}; set ${field} / server.port`));
      };
      server.once('error', onError);
      server.listen(port, address, () => {
        server.off('error', onError);
        resolve();
      });
    });
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

  private handle(req: IncomingMessage, res: ServerResponse, scope: Scope): void {
    // Requests still parsed from the buffer of a connection the guard cut off.
    if (req.socket.destroyed) return;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return this.reply(res, 405, { error: 'read-only endpoint: use GET' }, { Allow: 'GET, HEAD' });
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding']) {
      return this.reply(res, 413, { error: 'requests to this endpoint carry no body' });
    }
    const path = pathOf(req);
    if (path === undefined) return this.reply(res, 400, { error: 'malformed request path' });
    try {
      this.route(path, req, res, scope);
    } catch (err) {
      this.log.error({ err, path }, 'health endpoint handler failed');
      if (!res.headersSent) this.reply(res, 500, { error: 'internal error' });
    }
  }

  private route(path: string, req: IncomingMessage, res: ServerResponse, scope: Scope): void {
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
      case '/metrics':
        this.collectMetrics().then(
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
    if (scope === 'pod') {
      return this.reply(res, 404, {
        error: `this address serves /healthz, /readyz, /metrics and the konnectivity echo only; /conditions and ${streamPath} are on ${this.options.address}:${this.port}`,
      });
    }
    switch (path) {
      case '/conditions':
        return this.reply(res, 200, {
          node: this.source.nodeName,
          conditions: this.source.conditions().map(renderCondition),
          probes: Object.fromEntries(this.source.results().map((r) => [r.probe, renderResult(r)])),
        });
      case streamPath:
        // Reached without a WebSocket upgrade: say how to connect.
        return this.reply(
          res,
          426,
          { error: `${streamPath} is a WebSocket stream: connect with a WebSocket client, e.g. websocat ws://${this.options.address}:${this.port}${streamPath}` },
          { Upgrade: 'websocket', Connection: 'Upgrade' },
        );
    }
    this.reply(res, 404, { error: `no such path; try /healthz, /readyz, /conditions, /metrics or ${streamPath}` });
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : `${JSON.stringify(body, null, 2)}\n`);
  }
}

function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://local').pathname;
  } catch {
    return undefined;
  }
}

function isStreamUpgrade(req: IncomingMessage): boolean {
  return pathOf(req) === streamPath && req.headers.upgrade?.toLowerCase() === 'websocket';
}

function plainResponse(status: number, text: string): string {
  const reasons: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable' };
  const body = `${text}\n`;
  return `HTTP/1.1 ${status} ${reasons[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function clientErrorResponse(code: string | undefined): string {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return plainResponse(408, 'the request did not arrive in time');
  if (code === 'HPE_HEADER_OVERFLOW') return plainResponse(431, 'request headers over 8 KiB');
  return plainResponse(400, 'malformed request');
}
