import type { CoreV1Event } from '@kubernetes/client-node';
import { KubeApiError, withQuery, type KubeClient } from '../common/kube/kubeClient.js';
import { sleepUnlessAborted } from '../common/sleep.js';

/**
 * A list+watch cache that never gives up, in the shape of client-go's Reflector
 * (tools/cache/reflector.go). We keep our own rather than client-node's ListWatch because
 * ListWatch's doneHandler (dist/cache.js) restarts only after a 410 or a client timeout: any
 * other error (the API server restarting, a refused connection, a 5xx) calls the error
 * handlers and stops for good, leaving a frozen cache that looks healthy.
 *
 * What it matches from client-go:
 * - lists in pages (`limit` + `continue`, like the reflector's pager) and replaces the store
 *   only once the last page arrived, emitting deletes for objects gone meanwhile;
 * - watches from the list's resourceVersion with bookmarks and a server-side timeout that is
 *   randomised so replicas do not reconnect in step (minWatchTimeout x [1, 2));
 * - a 410 Gone (on the watch or as an ERROR event) relists at once; a refused connection or
 *   a 429 re-watches from the same resourceVersion after a backoff; any other error relists
 *   after a backoff;
 * - backoff is exponential with jitter, 800 ms to 30 s, and resets once a watch has been
 *   healthy for a while (the reflector's backoff manager: 800ms initial, 30s cap, reset after 2m).
 * - with `initialSync: 'watchList'`, the initial sync and every relist are one streaming list
 *   (the reflector's watchList, KEP-3157): a watch with sendInitialEvents=true,
 *   resourceVersionMatch=NotOlderThan and bookmarks, from the last synced resourceVersion
 *   ("" at first and after a 410, as its rewatchResourceVersion). The initial objects arrive as
 *   ADDED events into a temporary store, transformed as they come, which replaces the cache only
 *   at the BOOKMARK annotated `k8s.io/initial-events-end: "true"`; the same stream then goes on
 *   as the watch, from that bookmark's resourceVersion. A server that refuses it (400/403/422) or
 *   a stream that ends before that bookmark falls back to the paged LIST for good, logged once,
 *   as the reflector falls back "because making progress is better than deadlocking".
 *
 * It also tells how current it is: `staleForMs()` is 0 while a watch is open and counts up
 * from the moment the last one broke, so readiness and leadership can refuse to act on a
 * cache that stopped moving (a list alone does not make it current: it is a snapshot).
 */
/** A page of a list as the API server sends it (the JSON field is `continue`). */
export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

/**
 * Opens a watch: events go to `onEvent` until the stream ends, which calls `done` (null: the
 * server closed it). Resolves once the server has answered, with a controller that ends it.
 */
export interface WatchSource {
  watch(path: string, params: Record<string, string>, onEvent: (type: string, object: unknown) => void, done: (err: unknown) => void): Promise<AbortController>;
}

export interface InformerOptions<T, S> {
  /** For logs: `nodes`, `events source=aks-auto-repair`. */
  name: string;
  /** API path of the collection, e.g. /api/v1/nodes. */
  path: string;
  watch: WatchSource;
  list(page: { limit: number; continue?: string }): Promise<ListPage<T>>;
  /** Extra watch query parameters (labelSelector, fieldSelector). */
  watchParams?: Record<string, string>;
  /** Store key of an object (namespace/name, or name for cluster-scoped objects). */
  key(object: T): string | undefined;
  /** What the cache keeps of each object, applied as it arrives (controller-runtime's cache transform). */
  transform(object: T): S;
  resourceVersion(object: T): string | undefined;
  pageSize?: number;
  /** How the cache is filled, at start and on every relist: one streaming watch, or paged LISTs (the default). */
  initialSync?: InitialSync;
  /** Called once, when the streaming list is refused and paged LISTs take over. */
  onWatchListFallback?: (reason: unknown) => void;
  backoff?: { initialMs: number; maxMs: number; resetAfterMs: number };
  minWatchTimeoutSeconds?: number;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  onError?: (err: unknown, what: 'list' | 'watch') => void;
}

export interface InformerHandlers<S> {
  add?(object: S): void;
  update?(object: S, previous: S): void;
  delete?(object: S): void;
}

export type InitialSync = 'watchList' | 'list';

/** The annotation of the bookmark that ends a streaming list's initial events (metav1.InitialEventsAnnotationKey). */
const initialEventsEnd = 'k8s.io/initial-events-end';

/** Answers that say this API server does not serve sendInitialEvents for this request. */
const watchListRefusals = new Set([400, 403, 422]);

const defaultBackoff = { initialMs: 800, maxMs: 30_000, resetAfterMs: 120_000 };

type WatchEnd =
  | { kind: 'closed' }
  | { kind: 'gone' }
  | { kind: 'error'; err: unknown; rewatch: boolean };

export class Informer<T, S> {
  private store = new Map<string, S>();
  private resourceVersion = '';
  private synced = false;
  private watching = false;
  /** When the cache was last known current (the last watch broke then); undefined before the first sync. */
  private currentAt: number | undefined;
  private failures = 0;
  /** Whether the next sync is a streaming list; false once the server refused one. */
  private streamingList: boolean;
  /** While a streaming list is under way: the objects received so far (the reflector's temporary store). */
  private incoming: Map<string, S> | undefined;
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;
  private firstSync: { promise: Promise<void>; resolve: () => void };
  private readonly handlers: Array<InformerHandlers<S>> = [];
  private readonly now: () => number;
  private readonly backoff: { initialMs: number; maxMs: number; resetAfterMs: number };
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Counters for metrics and tests. */
  readonly stats = { lists: 0, listPages: 0, watchLists: 0, watches: 0, relists: 0, errors: 0 };

  constructor(private readonly options: InformerOptions<T, S>) {
    this.now = options.now ?? Date.now;
    this.backoff = options.backoff ?? defaultBackoff;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? sleepUnlessAborted;
    this.streamingList = options.initialSync === 'watchList';
    let resolve = () => {};
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstSync = { promise, resolve };
  }

  get name(): string {
    return this.options.name;
  }

  on(handlers: InformerHandlers<S>): void {
    this.handlers.push(handlers);
  }

  /** Starts the list+watch loop; resolves once the first full list is in the store. */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.firstSync.promise;
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
  }

  get(key: string): S | undefined {
    return this.store.get(key);
  }

  list(): S[] {
    return [...this.store.values()];
  }

  /** The cached keys, without copying them. */
  keys(): IterableIterator<string> {
    return this.store.keys();
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** 0 while a watch is open; else how long since the cache was last known current (Infinity before the first sync). */
  staleForMs(): number {
    if (this.watching) return 0;
    return this.currentAt === undefined ? Number.POSITIVE_INFINITY : Math.max(0, this.now() - this.currentAt);
  }

  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    let needList = true;
    while (!signal.aborted) {
      if (needList && !this.streamingList) {
        try {
          await this.relist(signal);
          needList = false;
        } catch (err) {
          if (signal.aborted) break;
          this.fail(err, 'list');
          await this.sleep(this.nextDelay(), signal);
          continue;
        }
      }
      const listing = needList;
      const watchStarted = this.now();
      const end = await this.watchOnce(signal, listing);
      if (signal.aborted) break;
      if (listing && this.incoming !== undefined) {
        this.incoming = undefined;
        await this.streamEndedUnsynced(end, signal);
        continue;
      }
      needList = false;
      if (this.now() - watchStarted >= this.backoff.resetAfterMs) this.failures = 0;
      if (end.kind === 'gone') {
        this.resourceVersion = '';
        needList = true;
        continue;
      }
      if (end.kind === 'closed') {
        // A server that closes at once, over and over, must not make us spin.
        if (this.now() - watchStarted < 1000) await this.sleep(this.nextDelay(), signal);
        continue;
      }
      this.fail(end.err, 'watch');
      needList = !end.rewatch;
      await this.sleep(this.nextDelay(), signal);
    }
    this.watching = false;
  }

  /** A streaming list that ended before its initial-events-end bookmark: try again, or fall back to paged LISTs. */
  private async streamEndedUnsynced(end: WatchEnd, signal: AbortSignal): Promise<void> {
    if (end.kind === 'gone') {
      this.resourceVersion = '';
      return;
    }
    if (end.kind === 'closed' || watchListRefusals.has(statusOf(end.err) ?? 0)) {
      this.streamingList = false;
      this.options.onWatchListFallback?.(end.kind === 'closed' ? new Error('the stream ended before the initial-events-end bookmark') : end.err);
      return;
    }
    this.fail(end.err, 'list');
    await this.sleep(this.nextDelay(), signal);
  }

  private fail(err: unknown, what: 'list' | 'watch'): void {
    this.stats.errors += 1;
    this.failures += 1;
    this.options.onError?.(err, what);
  }

  /** Exponential with jitter: the n-th consecutive failure waits up to initial x 2^(n-1), capped. */
  private nextDelay(): number {
    const exp = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.max(0, this.failures - 1));
    return exp * (0.5 + this.random() * 0.5);
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const pageSize = this.options.pageSize ?? 500;
    const fresh = new Map<string, S>();
    let token: string | undefined;
    let version = '';
    do {
      const page = await this.options.list(token === undefined ? { limit: pageSize } : { limit: pageSize, continue: token });
      if (signal.aborted) return;
      this.stats.listPages += 1;
      for (const item of page.items ?? []) {
        const key = this.options.key(item);
        if (key !== undefined) fresh.set(key, this.options.transform(item));
      }
      version = page.metadata?.resourceVersion ?? version;
      token = page.metadata?.continue || undefined;
    } while (token !== undefined);
    this.replaceStore(fresh, version);
  }

  /** A full sync is in: it becomes the cache, with deletes for what went away meanwhile. */
  private replaceStore(fresh: Map<string, S>, version: string): void {
    this.stats.lists += 1;
    if (this.synced) this.stats.relists += 1;
    const previous = this.store;
    this.store = fresh;
    this.resourceVersion = version;
    for (const [key, object] of previous) if (!fresh.has(key)) this.emit('delete', object);
    for (const [key, object] of fresh) {
      const before = previous.get(key);
      if (before === undefined) this.emit('add', object);
      else this.emit('update', object, before);
    }
    if (!this.synced) {
      this.synced = true;
      this.firstSync.resolve();
    }
  }

  /** One watch; with `listing`, a streaming list whose initial events fill a new store first. */
  private watchOnce(signal: AbortSignal, listing: boolean): Promise<WatchEnd> {
    const minTimeout = this.options.minWatchTimeoutSeconds ?? 300;
    const params: Record<string, string> = {
      ...this.options.watchParams,
      ...(listing ? { sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan' } : {}),
      ...(listing && !this.resourceVersion ? {} : { resourceVersion: this.resourceVersion }),
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(Math.floor(minTimeout * (1 + this.random()))),
    };
    this.stats.watches += 1;
    if (listing) {
      this.stats.watchLists += 1;
      this.incoming = new Map();
    }
    return new Promise<WatchEnd>((resolve) => {
      let gone = false;
      let settled = false;
      let request: AbortController | undefined;
      const finish = (end: WatchEnd) => {
        if (settled) return;
        settled = true;
        if (this.watching) this.currentAt = this.now();
        this.watching = false;
        signal.removeEventListener('abort', onAbort);
        request?.abort();
        resolve(end);
      };
      const onAbort = () => finish({ kind: 'closed' });
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const onEvent = (type: string, object: unknown) => {
        if (settled) return;
        if (type === 'ERROR') {
          if ((object as { code?: unknown } | undefined)?.code === 410) gone = true;
          return;
        }
        const typed = object as T;
        const version = this.options.resourceVersion(typed);
        if (this.incoming !== undefined) {
          if (type === 'BOOKMARK') {
            if (annotationsOf(object)?.[initialEventsEnd] !== 'true') return;
            // The cache is synced (and current) from this bookmark on, not before.
            const fresh = this.incoming;
            this.incoming = undefined;
            this.replaceStore(fresh, version ?? '');
            this.watching = true;
            this.currentAt = this.now();
            return;
          }
          this.collect(type, typed);
          return;
        }
        if (type !== 'BOOKMARK') this.apply(type, typed);
        if (version) this.resourceVersion = version;
      };
      const onDone = (err: unknown) => {
        if (gone || statusOf(err) === 410) return finish({ kind: 'gone' });
        // A watch silent for longer than its idle timeout is re-opened from where it was, as a closed one.
        if (!err || (err instanceof KubeApiError && err.reason === 'Timeout')) return finish({ kind: 'closed' });
        finish({ kind: 'error', err, rewatch: isRefused(err) || statusOf(err) === 429 });
      };
      this.options.watch
        .watch(this.options.path, params, onEvent, onDone)
        .then((controller) => {
          request = controller;
          if (settled) controller.abort();
          // watch() resolves after the response headers; a failure has already called onDone.
          // A streaming list is current only from its initial-events-end bookmark.
          else if (this.incoming === undefined) {
            this.watching = true;
            this.currentAt = this.now();
          }
        })
        .catch((err: unknown) => finish({ kind: 'error', err, rewatch: isRefused(err) }));
    });
  }

  /** An initial event of a streaming list, into the store that replaces the cache at its end. */
  private collect(type: string, object: T): void {
    const key = this.options.key(object);
    if (key === undefined || this.incoming === undefined) return;
    if (type === 'DELETED') this.incoming.delete(key);
    else if (type === 'ADDED' || type === 'MODIFIED') this.incoming.set(key, this.options.transform(object));
  }

  private apply(type: string, object: T): void {
    const key = this.options.key(object);
    if (key === undefined) return;
    if (type === 'DELETED') {
      const before = this.store.get(key);
      this.store.delete(key);
      this.emit('delete', before ?? this.options.transform(object));
      return;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED') return;
    const slim = this.options.transform(object);
    const before = this.store.get(key);
    this.store.set(key, slim);
    if (before === undefined) this.emit('add', slim);
    else this.emit('update', slim, before);
  }

  private emit(kind: 'add' | 'update' | 'delete', object: S, previous?: S): void {
    for (const h of this.handlers) {
      if (kind === 'add') h.add?.(object);
      else if (kind === 'update') h.update?.(object, previous as S);
      else h.delete?.(object);
    }
  }
}

function statusOf(err: unknown): number | undefined {
  return err instanceof KubeApiError ? err.status : undefined;
}

function annotationsOf(object: unknown): Record<string, string> | undefined {
  return (object as { metadata?: { annotations?: Record<string, string> } } | undefined)?.metadata?.annotations;
}

function isRefused(err: unknown): boolean {
  return err instanceof KubeApiError && err.reason === 'ECONNREFUSED';
}

/**
 * Watches through the KubeClient. `idleTimeoutMs`: how long a silent stream is trusted; a
 * resource whose watches carry bookmarks (Nodes: about one a minute) can use a short one. By
 * default it is the watch's own timeoutSeconds plus 30 s, for resources the API server sends no
 * bookmarks for (Events, which have no watch cache): they are silent until an event or the end.
 */
export function kubeWatchSource(client: KubeClient, options: { idleTimeoutMs?: number } = {}): WatchSource {
  return {
    watch(path, params, onEvent, done) {
      const controller = new AbortController();
      const idleTimeoutMs = options.idleTimeoutMs ?? (Number(params.timeoutSeconds ?? 0) + 30) * 1000;
      return new Promise<AbortController>((resolve) => {
        client
          .watch<unknown>(withQuery(path, { ...params, watch: 'true' }), (event) => onEvent(event.type, event.object), {
            idleTimeoutMs,
            signal: controller.signal,
            onOpen: () => resolve(controller),
          })
          .then(
            () => done(null),
            (err: unknown) => done(controller.signal.aborted ? null : err),
          )
          .finally(() => resolve(controller));
      });
    },
  };
}

/** Lists a collection through the KubeClient, one page per call; `maxBytes` bounds a page's reply. */
export function kubeLister<T>(client: KubeClient, path: string, params: Record<string, string | undefined>, maxBytes?: number): InformerOptions<T, unknown>['list'] {
  return (page) => client.request<ListPage<T>>('GET', withQuery(path, { ...params, limit: page.limit, continue: page.continue }), maxBytes === undefined ? {} : { maxBytes });
}

/** What every Events informer shares: the collection, its field selector, the Event's key and version. */
export function eventSource(client: KubeClient, path: string, fieldSelector: string) {
  return {
    path,
    // Events get no bookmarks: the stream is trusted until its own server-side timeout.
    watch: kubeWatchSource(client),
    list: kubeLister<CoreV1Event>(client, path, { fieldSelector }),
    watchParams: { fieldSelector },
    key: (e: CoreV1Event) => (e.metadata?.name ? `${e.metadata.namespace ?? ''}/${e.metadata.name}` : undefined),
    resourceVersion: (e: CoreV1Event) => e.metadata?.resourceVersion,
  };
}
