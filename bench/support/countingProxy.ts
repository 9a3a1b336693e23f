import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { projectNode } from './agentProcess.js';
import { isMainModule } from './benchMain.js';

/**
 * A TLS proxy on 127.0.0.1 in front of kube-apiserver that counts what one client asks of it:
 * requests, request and response bytes on the wire, by verb and resource. kube-apiserver's own
 * /metrics cannot tell clients apart (apiserver_request_total and apiserver_response_sizes have
 * no user or user-agent label), so the controller alone is pointed here.
 *
 * It serves the API server's own certificate (its cert-dir's self-signed pair, which covers
 * 127.0.0.1), so the client verifies it with the same CA and keeps its TLS cost. It runs in a
 * child process so that the bench's own work (the churn it generates) never delays the
 * client's traffic.
 */

export interface RequestTally {
  requests: number;
  /** Request bodies as sent (bytes). */
  requestBytes: number;
  /** Response bodies as received, compressed if the server compressed them (bytes). */
  responseBytes: number;
  /** Largest single response body (bytes). */
  largestResponseBytes: number;
  /** Responses the server sent with a Content-Encoding (gzip for large LISTs). */
  compressed: number;
  /** When the first of these requests arrived and the last response ended (epoch ms). */
  firstAt: number;
  lastEndAt: number;
}

/** By `VERB resource[/subresource]`, e.g. `LIST nodes`, `WATCH nodes`, `PATCH nodes`, `PUT leases`. */
export type Tallies = Record<string, RequestTally>;

/**
 * What a request is, in kube-apiserver's own verbs: GET on a collection is LIST, with
 * `watch=true` (or under /watch/) it is WATCH; GET on one object is GET.
 */
export function classifyRequest(method: string, url: string): string {
  const parsed = new URL(url, 'https://proxy.invalid');
  let parts = parsed.pathname.split('/').filter(Boolean);
  if (parts[0] === 'api') parts = parts.slice(2);
  else if (parts[0] === 'apis') parts = parts.slice(3);
  else return `${method} ${parsed.pathname}`;
  let watchPath = false;
  if (parts[0] === 'watch') {
    watchPath = true;
    parts = parts.slice(1);
  }
  if (parts[0] === 'namespaces' && parts.length >= 3) parts = parts.slice(2);
  const [resource = '', name, subresource] = parts;
  const target = subresource ? `${resource}/${subresource}` : resource;
  if (method !== 'GET') return `${method} ${target}`;
  if (watchPath || parsed.searchParams.get('watch') === 'true' || parsed.searchParams.get('watch') === '1') return `WATCH ${target}`;
  return `${name === undefined ? 'LIST' : 'GET'} ${target}`;
}

/** One write the client sent (anything but GET), when its request arrived. */
export interface WriteRecord {
  at: number;
  method: string;
  path: string;
}

/** The newest writes kept, so a trial can tell when the client acted on a given object. */
const KEPT_WRITES = 2000;

/** What one interval cost: the counters' difference (maxima and times belong to whole runs). */
export type IntervalTally = Pick<RequestTally, 'requests' | 'requestBytes' | 'responseBytes' | 'compressed'>;

export function talliesBetween(before: Tallies, after: Tallies): Record<string, IntervalTally> {
  const out: Record<string, IntervalTally> = {};
  for (const [key, a] of Object.entries(after)) {
    const b = before[key];
    const interval = {
      requests: a.requests - (b?.requests ?? 0),
      requestBytes: a.requestBytes - (b?.requestBytes ?? 0),
      responseBytes: a.responseBytes - (b?.responseBytes ?? 0),
      compressed: a.compressed - (b?.compressed ?? 0),
    };
    if (interval.requests > 0 || interval.responseBytes > 0) out[key] = interval;
  }
  return out;
}

/** Hop-by-hop headers: each side of the proxy frames its own connection. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function endToEnd(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

interface ProxyOptions {
  /** https://127.0.0.1:<port> of the API server. */
  upstream: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** The proxy itself (in the child process). */
interface ProxyState {
  tallies: Tallies;
  writes: WriteRecord[];
  /** TLS connections the client opened: a client that reuses its connections opens a handful. */
  connections: number;
}

function serveProxy(options: ProxyOptions): Promise<{ server: Server; port: number; state: ProxyState }> {
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true, ca: options.caPem, maxSockets: 64 });
  const state: ProxyState = { tallies: {}, writes: [], connections: 0 };
  const { tallies, writes } = state;
  const tally = (key: string) =>
    (tallies[key] ??= { requests: 0, requestBytes: 0, responseBytes: 0, largestResponseBytes: 0, compressed: 0, firstAt: Date.now(), lastEndAt: 0 });

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const kind = classifyRequest(method, req.url ?? '/');
    const t = tally(kind);
    t.requests += 1;
    if (method !== 'GET') {
      writes.push({ at: Date.now(), method, path: new URL(req.url ?? '/', 'https://proxy.invalid').pathname });
      if (writes.length > KEPT_WRITES) writes.splice(0, writes.length - KEPT_WRITES);
    }
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), host: upstream.host },
        agent,
      },
      (answer) => {
        if (answer.headers['content-encoding']) t.compressed += 1;
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        // A watch sends nothing until an event: its client waits for the headers to call it open.
        res.flushHeaders();
        let bytes = 0;
        answer.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          t.responseBytes += chunk.length;
        });
        const started = Date.now();
        answer.on('end', () => {
          t.largestResponseBytes = Math.max(t.largestResponseBytes, bytes);
          t.lastEndAt = Date.now();
        });
        // Watches are few and long: each one's end goes to the log, for telling why a client re-watches.
        if (kind.startsWith('WATCH ')) {
          res.on('close', () => process.stdout.write(`${new Date().toISOString()} ${req.url} ${answer.statusCode}: open ${Date.now() - started} ms, ${bytes} bytes\n`));
        }
        answer.pipe(res);
      },
    );
    req.on('data', (chunk: Buffer) => {
      t.requestBytes += chunk.length;
    });
    // A client that gives up (a watch it aborts) ends the upstream request too.
    res.on('close', () => out.destroy());
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(out);
  };

  const server = createServer({ cert: options.certPem, key: options.keyPem, keepAlive: true }, handle);
  server.on('secureConnection', () => {
    state.connections += 1;
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, state }));
  });
}

type ToChild = { kind: 'counters' | 'writes'; id: number };
type FromChild =
  | { kind: 'listening'; port: number }
  | { kind: 'counters'; id: number; tallies: Tallies; connections: number }
  | { kind: 'writes'; id: number; writes: WriteRecord[] };

/** The bench's handle on the proxy's child process. */
export class CountingProxy {
  private nextId = 0;
  private readonly pending = new Map<number, (message: FromChild) => void>();

  private constructor(
    private readonly child: ChildProcess,
    /** https://127.0.0.1:<port> to give the client instead of the API server's address. */
    readonly server: string,
  ) {
    child.on('message', (message: FromChild) => {
      if (message.kind === 'listening') return;
      this.pending.get(message.id)?.(message);
      this.pending.delete(message.id);
    });
  }

  /** Starts the proxy for `upstream`, serving the pair in `certFile`/`keyFile`; its log goes to `logPath`. */
  static async start(options: { upstream: string; caPem: string; certFile: string; keyFile: string; logPath: string }): Promise<CountingProxy> {
    const log = openSync(options.logPath, 'w');
    let child: ChildProcess;
    try {
      child = fork(new URL(import.meta.url).pathname, [], { execPath: projectNode(), stdio: ['ignore', log, log, 'ipc'] });
    } finally {
      closeSync(log);
    }
    const setup: ProxyOptions = {
      upstream: options.upstream,
      caPem: options.caPem,
      certPem: readFileSync(options.certFile, 'utf8'),
      keyPem: readFileSync(options.keyFile, 'utf8'),
    };
    const port = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the counting proxy exited (${code}) before listening; see ${options.logPath}`));
      child.once('exit', onExit);
      child.once('message', (message: FromChild) => {
        child.off('exit', onExit);
        if (message.kind === 'listening') resolve(message.port);
        else reject(new Error('the counting proxy answered before listening'));
      });
      child.send(setup);
    });
    return new CountingProxy(child, `https://127.0.0.1:${port}`);
  }

  /** The counters since the proxy started. */
  async counters(): Promise<{ tallies: Tallies; connections: number }> {
    const answer = await this.ask('counters');
    return answer.kind === 'counters' ? { tallies: answer.tallies, connections: answer.connections } : { tallies: {}, connections: 0 };
  }

  /** The newest writes the client sent, oldest first. */
  async writes(): Promise<WriteRecord[]> {
    const answer = await this.ask('writes');
    return answer.kind === 'writes' ? answer.writes : [];
  }

  private ask(kind: ToChild['kind']): Promise<FromChild> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.child.connected) return reject(new Error('the counting proxy is gone'));
      this.pending.set(id, resolve);
      this.child.send({ kind, id } satisfies ToChild);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

if (isMainModule(import.meta.url)) {
  process.once('message', (setup: ProxyOptions) => {
    serveProxy(setup).then(
      ({ port, state }) => {
        process.on('message', (message: ToChild) => {
          if (message.kind === 'counters') {
            process.send?.({ kind: 'counters', id: message.id, tallies: state.tallies, connections: state.connections } satisfies FromChild);
          } else process.send?.({ kind: 'writes', id: message.id, writes: state.writes } satisfies FromChild);
        });
        process.send?.({ kind: 'listening', port } satisfies FromChild);
      },
      (err: unknown) => {
        process.stderr.write(`counting proxy: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  });
  // Exits with the bench, whichever way it ends.
  process.on('disconnect', () => process.exit(0));
}
