import { readFileSync, statSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { http } from '../nodeHttp.js';
import type { KubeCredentials } from './kubeCredentials.js';

export type PatchType = 'strategic' | 'merge' | 'json';
const patchContentType: Record<PatchType, string> = {
  strategic: 'application/strategic-merge-patch+json',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
};

/** KubeApiError's reason when this client cannot read its own token: no request was sent. */
export const tokenUnreadable = 'TokenUnreadable';

/** An answer from the API server that is not 2xx, or no answer at all (status 0). */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    message: string,
    readonly status: number,
    /** The Status object's reason (NotFound, Forbidden, Conflict...) or the network error code. */
    readonly reason: string,
    /** Seconds the server asked us to wait (429/503 Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  body?: unknown;
  patch?: PatchType;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Accept a non-JSON body (e.g. a proxied health endpoint). */
  raw?: boolean;
  /** Stream a 2xx body line by line (watches) instead of collecting it; `timeoutMs` is then an idle timeout. */
  onLine?: (line: string) => void;
  /** With `onLine`: called once the server has answered 2xx and the stream begins. */
  onOpen?: () => void;
  /** The largest reply (or watch event) accepted; a page of 500 full Nodes can exceed the default. */
  maxBytes?: number;
}

export interface KubeClientOptions {
  /** Idle timeout of a request whose caller gives none: how long a silent socket is waited for. */
  defaultTimeoutMs?: number;
  /** Connections kept to the API server at most; a watch holds one for as long as it runs. */
  maxSockets?: number;
}

const defaultMaxBytes = 8 * 1024 * 1024;
const tokenRereadMs = 60_000;

/** A path with its query string, leaving out parameters that are undefined. */
export function withQuery(path: string, params: Record<string, string | number | boolean | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) query.set(key, String(value));
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * The programs' Kubernetes client: REST calls over node:https with the cluster's CA and the
 * ServiceAccount token (re-read as the kubelet rotates it) or a client certificate, on a few
 * kept-alive connections. @kubernetes/client-node's runtime costs ~80 MiB RSS and opens a new
 * TLS connection per request, so only its types are used here.
 */
export class KubeClient {
  private readonly url: URL;
  private readonly agent: Agent | undefined;
  private token: string | undefined;
  private tokenReadAt = 0;
  private tokenMtimeMs = 0;
  private readonly defaultTimeoutMs: number;

  constructor(
    private readonly credentials: KubeCredentials,
    options: KubeClientOptions = {},
  ) {
    this.url = new URL(credentials.server);
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
    if (this.url.protocol === 'https:') {
      this.agent = new Agent({
        keepAlive: true,
        maxSockets: options.maxSockets ?? 4,
        ca: credentials.ca,
        cert: credentials.cert,
        key: credentials.key,
        rejectUnauthorized: !credentials.insecureSkipTLSVerify,
        servername: credentials.tlsServerName,
      });
    }
    this.token = credentials.token;
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const { status, headers, body } = await this.send(method, path, options);
    // The token may have been rotated under us: look at the file again before the next call.
    if (status === 401) this.tokenReadAt = 0;
    if (status >= 200 && status < 300) {
      if (options.raw) return body as T;
      if (body.length === 0) return undefined as T;
      try {
        return JSON.parse(body) as T;
      } catch {
        throw new KubeApiError(`${method} ${path}: the API server sent a reply that is not JSON`, status, 'MalformedReply');
      }
    }
    throw apiError(method, path, status, headers, body);
  }

  /**
   * A watch: each JSON line of the stream goes to `onEvent` until the server ends it (its
   * `timeoutSeconds`), `signal` aborts it, or it fails (a KubeApiError, 410 Gone included).
   */
  async watch<T>(
    path: string,
    onEvent: (event: { type: string; object: T }) => void,
    options: { idleTimeoutMs: number; signal?: AbortSignal; onOpen?: () => void },
  ): Promise<void> {
    const onLine = (line: string) => {
      let event: { type?: unknown; object?: unknown };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        throw new KubeApiError(`watch ${path}: a line of the stream is not JSON`, 0, 'MalformedReply');
      }
      if (event.type === 'ERROR') {
        const status = event.object as { code?: number; reason?: string; message?: string };
        throw new KubeApiError(`watch ${path}: ${status.message ?? 'error'}`, status.code ?? 0, status.reason ?? 'WatchError');
      }
      if (typeof event.type === 'string' && typeof event.object === 'object' && event.object !== null) {
        onEvent({ type: event.type, object: event.object as T });
      }
    };
    const { status, headers, body } = await this.send('GET', path, { timeoutMs: options.idleTimeoutMs, signal: options.signal, onLine, onOpen: options.onOpen });
    if (status < 200 || status >= 300) throw apiError('GET', path, status, headers, body);
  }

  close(): void {
    this.agent?.destroy();
  }

  private bearer(): string | undefined {
    const file = this.credentials.tokenFile;
    if (!file) return this.token;
    const now = Date.now();
    if (this.token === undefined || now - this.tokenReadAt > tokenRereadMs) {
      try {
        const mtime = statSync(file).mtimeMs;
        if (this.token === undefined || mtime !== this.tokenMtimeMs) {
          this.token = readFileSync(file, 'utf8').trim();
          this.tokenMtimeMs = mtime;
        }
      } catch (err) {
        if (this.token === undefined) throw new KubeApiError(`cannot read the token ${file}: ${(err as Error).message}`, 0, tokenUnreadable);
      }
      this.tokenReadAt = now;
    }
    return this.token;
  }

  private send(method: string, path: string, options: RequestOptions): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string | number> = { Accept: options.raw ? '*/*' : 'application/json' };
    const token = this.bearer();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (payload) {
      headers['Content-Type'] = options.patch ? patchContentType[options.patch] : 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const maxBytes = options.maxBytes ?? defaultMaxBytes;
    const requester = this.url.protocol === 'https:' ? httpsRequest : http.request;
    return new Promise((resolve, reject) => {
      const req = requester(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
          port: this.url.port || (this.url.protocol === 'https:' ? 443 : 80),
          path: `${this.url.pathname.replace(/\/$/, '')}${path}`,
          method,
          headers,
          agent: this.agent,
          signal: options.signal,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const failed = (err: NodeJS.ErrnoException) => reject(err instanceof KubeApiError ? err : new KubeApiError(`${method} ${path}: ${err.message}`, 0, err.code ?? 'NetworkError'));
          if (options.onLine && status >= 200 && status < 300) {
            options.onOpen?.();
            let pending = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              pending += chunk;
              if (pending.length > maxBytes) {
                req.destroy(new KubeApiError(`${method} ${path}: a watch event larger than ${maxBytes} bytes`, 0, 'ReplyTooLarge'));
                return;
              }
              let newline = pending.indexOf('\n');
              while (newline >= 0) {
                const line = pending.slice(0, newline).trim();
                pending = pending.slice(newline + 1);
                if (line) {
                  try {
                    options.onLine?.(line);
                  } catch (err) {
                    req.destroy(err as Error);
                    return;
                  }
                }
                newline = pending.indexOf('\n');
              }
            });
            res.on('end', () => resolve({ status, headers: res.headers, body: '' }));
            res.on('error', failed);
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              req.destroy(new KubeApiError(`${method} ${path}: reply larger than ${maxBytes} bytes`, 0, 'ReplyTooLarge'));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => resolve({ status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', failed);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new KubeApiError(`${method} ${path}: no answer within ${timeoutMs}ms`, 0, 'Timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof KubeApiError) return reject(err);
        const reason = err.name === 'AbortError' ? 'Aborted' : (err.code ?? 'NetworkError');
        reject(new KubeApiError(`${method} ${path}: ${err.message}`, 0, reason));
      });
      req.end(payload);
    });
  }
}

function apiError(method: string, path: string, status: number, headers: IncomingHttpHeaders, body: string): KubeApiError {
  let reason = `HTTP${status}`;
  let message = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { reason?: unknown; message?: unknown };
    if (typeof parsed.reason === 'string' && parsed.reason) reason = parsed.reason;
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not a Status object (a proxy or load balancer answered): keep the raw text.
  }
  const retryAfter = Number(headers['retry-after']);
  return new KubeApiError(`${method} ${path}: ${status} ${message}`, status, reason, Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined);
}
