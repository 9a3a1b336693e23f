import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { KubeApiError, KubeClient } from '../../common/kube/kubeClient.js';
import { Informer, kubeLister, kubeWatchSource, type ListPage } from '../../controller/informer.js';

/**
 * The controller's list+watch cache, driven by a scripted watch and list: the API server's
 * behaviours (a restart mid-watch, 410 Gone, refused connections, pages) one at a time.
 */
interface Obj {
  metadata: { name: string; resourceVersion: string };
  value?: string;
}

const obj = (name: string, rv: number, value?: string): Obj => ({ metadata: { name, resourceVersion: String(rv) }, ...(value ? { value } : {}) });

interface WatchCall {
  params: Record<string, string>;
  send(type: string, object: unknown): void;
  end(err?: unknown): void;
  aborted: boolean;
}

class ScriptedWatch {
  readonly calls: WatchCall[] = [];
  private waiters: Array<(c: WatchCall) => void> = [];
  /** Errors the next watch() calls fail with before any response (a down API server). */
  readonly refuse: unknown[] = [];

  watch(_path: string, params: Record<string, string>, cb: (type: string, object: unknown) => void, done: (err: unknown) => void): Promise<AbortController> {
    const controller = new AbortController();
    const refusal = this.refuse.shift();
    if (refusal !== undefined) {
      done(refusal);
      return Promise.resolve(controller);
    }
    let finished = false;
    const call: WatchCall = {
      params,
      send: (type, object) => {
        if (!finished) cb(type, object);
      },
      end: (err) => {
        if (finished) return;
        finished = true;
        done(err ?? null);
      },
      get aborted() {
        return controller.signal.aborted;
      },
    };
    controller.signal.addEventListener('abort', () => call.end());
    this.calls.push(call);
    this.waiters.splice(0).forEach((w) => w(call));
    return Promise.resolve(controller);
  }

  /** Resolves with the n-th watch call (0-based) once it has been made. */
  async nth(n: number): Promise<WatchCall> {
    while (this.calls.length <= n) await new Promise<WatchCall>((resolve) => this.waiters.push(resolve));
    return this.calls[n] as WatchCall;
  }
}

function setup(options: { pages?: () => Array<ListPage<Obj>>; pageSize?: number; initialSync?: 'watchList' | 'list' } = {}) {
  const watch = new ScriptedWatch();
  let clock = 1_000_000;
  const sleeps: number[] = [];
  /** The informer's staleness as each backoff sleep began. */
  const staleAtSleeps: number[] = [];
  const lists: Array<{ limit: number; continue?: string }> = [];
  const listFailures: unknown[] = [];
  let pages = options.pages ?? (() => [{ items: [obj('a', 1), obj('b', 2)], metadata: { resourceVersion: '10' } }]);
  const errors: Array<{ what: string; err: unknown }> = [];
  const fallbacks: unknown[] = [];
  const informer: Informer<Obj, Obj> = new Informer<Obj, Obj>({
    name: 'objs',
    path: '/api/v1/objs',
    watch,
    list: async (page) => {
      lists.push(page);
      const failure = listFailures.shift();
      if (failure !== undefined) throw failure;
      const all = pages();
      const index = page.continue === undefined ? 0 : Number(page.continue);
      const current = all[index] as ListPage<Obj>;
      const last = index === all.length - 1;
      return { items: current.items, metadata: { resourceVersion: current.metadata?.resourceVersion ?? '', ...(last ? {} : { continue: String(index + 1) }) } };
    },
    key: (o) => o.metadata.name,
    transform: (o) => o,
    resourceVersion: (o) => o.metadata.resourceVersion,
    pageSize: options.pageSize ?? 500,
    ...(options.initialSync ? { initialSync: options.initialSync } : {}),
    onWatchListFallback: (reason) => fallbacks.push(reason),
    now: () => clock,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
      staleAtSleeps.push(informer.staleForMs());
      clock += ms;
    },
    onError: (err, what) => errors.push({ err, what }),
  });
  const seen: string[] = [];
  informer.on({
    add: (o) => seen.push(`add ${o.metadata.name}`),
    update: (o) => seen.push(`update ${o.metadata.name}${o.value ? `=${o.value}` : ''}`),
    delete: (o) => seen.push(`delete ${o.metadata.name}`),
  });
  return {
    informer,
    watch,
    sleeps,
    staleAtSleeps,
    lists,
    listFailures,
    errors,
    fallbacks,
    seen,
    advance: (ms: number) => (clock += ms),
    setPages: (p: () => Array<ListPage<Obj>>) => (pages = p),
  };
}

// As the KubeClient reports them: no answer (status 0, the socket error's code), or an answer.
const refused = new KubeApiError('GET /api/v1/objs: connect ECONNREFUSED 127.0.0.1:6443', 0, 'ECONNREFUSED');
const serverError = new KubeApiError('GET /api/v1/objs: 500 Internal Server Error', 500, 'InternalError');
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('informer: a Node cache that survives the API server', () => {
  it('keeps watching after the API server drops the watch with an error (client-node ListWatch stops here)', async () => {
    const t = setup();
    await t.informer.start();
    const first = await t.watch.nth(0);
    expect(first.params.resourceVersion).toBe('10');
    first.end(serverError);
    // A 500 is not a refused connection: like the reflector, relist, then watch again.
    const second = await t.watch.nth(1);
    second.send('MODIFIED', obj('a', 12, 'changed'));
    expect(t.informer.get('a')?.value).toBe('changed');
    expect(t.seen).toContain('update a=changed');
    expect(t.errors.map((e) => e.what)).toEqual(['watch']);
    await t.informer.stop();
  });

  it('re-watches from the same resourceVersion after a refused connection, with growing jittered backoff, and lists only once', async () => {
    const t = setup();
    await t.informer.start();
    const first = await t.watch.nth(0);
    first.send('MODIFIED', obj('b', 11));
    t.watch.refuse.push(refused, refused, refused);
    first.end(refused);
    const next = await t.watch.nth(1);
    expect(next.params.resourceVersion).toBe('11');
    expect(t.lists).toHaveLength(1);
    // 800 ms doubling per failure, times a jitter of 0.75 at random() = 0.5.
    expect(t.sleeps).toEqual([600, 1200, 2400, 4800]);
    await t.informer.stop();
  });

  it('caps the backoff at 30 s however long the outage lasts', async () => {
    const t = setup();
    await t.informer.start();
    t.watch.refuse.push(...Array.from({ length: 12 }, () => refused));
    (await t.watch.nth(0)).end(refused);
    await t.watch.nth(1);
    expect(Math.max(...t.sleeps)).toBe(30_000 * 0.75);
    await t.informer.stop();
  });

  it('keeps retrying the list while the API server is down at start, and syncs once it answers', async () => {
    const t = setup();
    t.listFailures.push(refused, serverError);
    await t.informer.start();
    expect(t.informer.hasSynced()).toBe(true);
    expect(t.lists).toHaveLength(3);
    expect(t.informer.list().map((o) => o.metadata.name).sort()).toEqual(['a', 'b']);
    await t.informer.stop();
  });

  it('relists on 410 Gone (resourceVersion too old) and emits deletes for objects that went away meanwhile', async () => {
    const t = setup();
    await t.informer.start();
    const first = await t.watch.nth(0);
    t.setPages(() => [{ items: [obj('a', 20), obj('c', 21)], metadata: { resourceVersion: '30' } }]);
    first.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    first.end();
    const second = await t.watch.nth(1);
    expect(second.params.resourceVersion).toBe('30');
    expect(t.lists).toHaveLength(2);
    expect(t.seen).toEqual(expect.arrayContaining(['delete b', 'add c']));
    expect(t.informer.get('b')).toBeUndefined();
    // A 410 is expected housekeeping: no error, no backoff.
    expect(t.errors).toEqual([]);
    expect(t.sleeps).toEqual([]);
    await t.informer.stop();
  });

  it('relists when the watch itself is refused with 410', async () => {
    const t = setup();
    await t.informer.start();
    t.watch.refuse.push(new KubeApiError('GET /api/v1/objs: 410 too old resource version', 410, 'Expired'));
    (await t.watch.nth(0)).end();
    await t.watch.nth(1);
    expect(t.lists).toHaveLength(2);
    await t.informer.stop();
  });

  it('lists in pages and replaces the cache only once the last page arrived', async () => {
    const t = setup({
      pageSize: 2,
      pages: () => [
        { items: [obj('n1', 1), obj('n2', 2)], metadata: { resourceVersion: '9' } },
        { items: [obj('n3', 3), obj('n4', 4)], metadata: { resourceVersion: '9' } },
        { items: [obj('n5', 5)], metadata: { resourceVersion: '9' } },
      ],
    });
    await t.informer.start();
    expect(t.lists).toEqual([{ limit: 2 }, { limit: 2, continue: '1' }, { limit: 2, continue: '2' }]);
    expect(t.informer.size).toBe(5);
    expect(t.informer.stats.listPages).toBe(3);
    await t.informer.stop();
  });

  it('reconnects at once when the server closes a watch normally (its timeoutSeconds), from the last resourceVersion', async () => {
    const t = setup();
    await t.informer.start();
    const first = await t.watch.nth(0);
    first.send('BOOKMARK', { metadata: { resourceVersion: '55' } });
    t.advance(300_000);
    first.end();
    const second = await t.watch.nth(1);
    expect(second.params.resourceVersion).toBe('55');
    expect(second.params.allowWatchBookmarks).toBe('true');
    expect(t.sleeps).toEqual([]);
    // Bookmarks move the resourceVersion without touching the cache.
    expect(t.seen.filter((s) => s.includes('55'))).toEqual([]);
    await t.informer.stop();
  });

  it('spreads the server-side watch timeout so replicas do not reconnect in step', async () => {
    const t = setup();
    await t.informer.start();
    const first = await t.watch.nth(0);
    expect(Number(first.params.timeoutSeconds)).toBe(450);
    await t.informer.stop();
  });

  it('reports how stale it is: never synced, current while watching, counting up from the moment the watch broke', async () => {
    const t = setup();
    expect(t.informer.staleForMs()).toBe(Number.POSITIVE_INFINITY);
    await t.informer.start();
    const first = await t.watch.nth(0);
    await tick();
    expect(t.informer.staleForMs()).toBe(0);
    t.advance(5_000);
    t.watch.refuse.push(refused, refused);
    first.end(refused);
    await t.watch.nth(1);
    // 0 when it broke, then the backoff slept so far (600, then 600 + 1200).
    expect(t.staleAtSleeps).toEqual([0, 600, 1800]);
    await tick();
    expect(t.informer.staleForMs()).toBe(0);
    await t.informer.stop();
  });

  it('stops for good on stop(), with no watch left open', async () => {
    const t = setup();
    await t.informer.start();
    const first = await t.watch.nth(0);
    await t.informer.stop();
    expect(first.aborted).toBe(true);
    expect(t.watch.calls).toHaveLength(1);
  });
});

/** The bookmark that ends a streaming list's initial events. */
const initialEventsEnd = (rv: number) => ({ metadata: { resourceVersion: String(rv), annotations: { 'k8s.io/initial-events-end': 'true' } } });

describe('informer: the streaming initial list (WatchList), with paged LISTs as the fallback', () => {
  it('fills the cache from one watch with sendInitialEvents=true and no LIST, synced only at the initial-events-end bookmark, then keeps watching on the same stream', async () => {
    const t = setup({ initialSync: 'watchList' });
    let synced = false;
    const started = t.informer.start().then(() => (synced = true));
    const stream = await t.watch.nth(0);
    expect(stream.params).toMatchObject({ sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: 'true' });
    expect(stream.params.resourceVersion).toBeUndefined();
    stream.send('ADDED', obj('a', 1));
    stream.send('ADDED', obj('b', 2));
    // A bookmark without the annotation is progress, not the end of the initial events.
    stream.send('BOOKMARK', { metadata: { resourceVersion: '5' } });
    await tick();
    expect(synced).toBe(false);
    expect(t.informer.hasSynced()).toBe(false);
    expect(t.informer.size).toBe(0);
    expect(t.informer.staleForMs()).toBe(Number.POSITIVE_INFINITY);
    stream.send('BOOKMARK', initialEventsEnd(7));
    await started;
    expect(t.informer.hasSynced()).toBe(true);
    expect(t.informer.staleForMs()).toBe(0);
    expect(t.seen).toEqual(['add a', 'add b']);
    stream.send('MODIFIED', obj('a', 8, 'changed'));
    expect(t.informer.get('a')?.value).toBe('changed');
    expect(t.lists).toEqual([]);
    expect(t.watch.calls).toHaveLength(1);
    // The watch goes on from the bookmark's resourceVersion, or later.
    stream.end();
    expect((await t.watch.nth(1)).params).toMatchObject({ resourceVersion: '8' });
    expect((await t.watch.nth(1)).params.sendInitialEvents).toBeUndefined();
    await t.informer.stop();
  });

  it('falls back to paged LISTs when the API server refuses sendInitialEvents, says so once, and stays on them for every relist', async () => {
    const t = setup({ initialSync: 'watchList' });
    t.watch.refuse.push(new KubeApiError('GET /api/v1/objs: 422 sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled', 422, 'Invalid'));
    await t.informer.start();
    expect(t.lists).toEqual([{ limit: 500 }]);
    expect(t.informer.size).toBe(2);
    // A refused watch is answered before any stream: the first stream is the plain watch after the list.
    const watch = await t.watch.nth(0);
    expect(watch.params.sendInitialEvents).toBeUndefined();
    watch.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    watch.end();
    const next = await t.watch.nth(1);
    expect(next.params.sendInitialEvents).toBeUndefined();
    expect(t.lists).toHaveLength(2);
    expect(t.fallbacks).toHaveLength(1);
    expect(t.errors).toEqual([]);
    await t.informer.stop();
  });

  it('falls back to paged LISTs when the stream ends before the initial-events-end bookmark, discarding what it sent', async () => {
    const t = setup({ initialSync: 'watchList' });
    const started = t.informer.start();
    const stream = await t.watch.nth(0);
    stream.send('ADDED', obj('x', 1));
    stream.end();
    await started;
    expect(t.lists).toEqual([{ limit: 500 }]);
    expect(t.informer.list().map((o) => o.metadata.name).sort()).toEqual(['a', 'b']);
    expect(t.fallbacks).toHaveLength(1);
    await t.informer.stop();
  });

  it('streams again after a refused connection (the API server restarting), with backoff, rather than giving up on the streaming list', async () => {
    const t = setup({ initialSync: 'watchList' });
    t.watch.refuse.push(refused);
    const started = t.informer.start();
    const stream = await t.watch.nth(0);
    expect(stream.params.sendInitialEvents).toBe('true');
    stream.send('ADDED', obj('a', 1));
    stream.send('BOOKMARK', initialEventsEnd(3));
    await started;
    expect(t.sleeps).toEqual([600]);
    expect(t.lists).toEqual([]);
    expect(t.fallbacks).toEqual([]);
    await t.informer.stop();
  });

  it('relists by a new stream after 410 Gone, from no resourceVersion, and emits deletes for objects that went away meanwhile', async () => {
    const t = setup({ initialSync: 'watchList' });
    const started = t.informer.start();
    const first = await t.watch.nth(0);
    first.send('ADDED', obj('a', 1));
    first.send('ADDED', obj('b', 2));
    first.send('BOOKMARK', initialEventsEnd(10));
    await started;
    first.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    first.end();
    const second = await t.watch.nth(1);
    expect(second.params.sendInitialEvents).toBe('true');
    expect(second.params.resourceVersion).toBeUndefined();
    second.send('ADDED', obj('a', 20));
    second.send('ADDED', obj('c', 21));
    // Until the bookmark the old cache is served as it was.
    expect(t.informer.get('b')).toBeDefined();
    second.send('BOOKMARK', initialEventsEnd(30));
    expect(t.informer.get('b')).toBeUndefined();
    expect(t.seen).toEqual(expect.arrayContaining(['delete b', 'add c', 'update a']));
    expect(t.informer.stats.relists).toBe(1);
    expect(t.lists).toEqual([]);
    expect(t.errors).toEqual([]);
    await t.informer.stop();
  });
});

/** A plain-HTTP API server on loopback that answers with `handle`, and the requests it saw. */
async function localApiServer(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new KubeClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, insecureSkipTLSVerify: false, source: 'test' });
  return {
    client,
    urls,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('informer: watches and lists through the Kubernetes client', () => {
  it('asks for a watch (watch=true with the informer\'s parameters), is open once the server answers, and hands events over until the server ends it', async () => {
    const api = await localApiServer((_req, res) => {
      res.writeHead(200);
      res.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '11' } } })}\n${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } })}\n`);
    });
    const seen: string[] = [];
    let opened: Promise<AbortController> | undefined;
    const ended = new Promise<unknown>((resolve) => {
      opened = kubeWatchSource(api.client).watch('/api/v1/nodes', { resourceVersion: '10', allowWatchBookmarks: 'true', timeoutSeconds: '450' }, (type) => seen.push(type), resolve);
    });
    expect(await ended).toBeNull();
    await expect(opened).resolves.toBeInstanceOf(AbortController);
    expect(seen).toEqual(['ADDED', 'BOOKMARK']);
    const query = new URL(api.urls[0] ?? '', 'http://x').searchParams;
    expect(Object.fromEntries(query)).toEqual({ resourceVersion: '10', allowWatchBookmarks: 'true', timeoutSeconds: '450', watch: 'true' });
    await api.close();
  });

  it('a 410 Gone sent as an ERROR event ends the watch with status 410, which makes the informer relist', async () => {
    const api = await localApiServer((_req, res) => {
      res.writeHead(200);
      res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } })}\n`);
    });
    const err = await new Promise<unknown>((resolve) => void kubeWatchSource(api.client).watch('/api/v1/nodes', { resourceVersion: '1' }, () => {}, resolve));
    expect(err).toMatchObject({ status: 410, reason: 'Expired' });
    await api.close();
  });

  it('an Events watch (no bookmarks) is trusted until its own server-side timeout, not cut after 90 s; a Node watch keeps its short idle timeout', async () => {
    const idle: number[] = [];
    const recording = { watch: (_path: string, _onEvent: unknown, options: { idleTimeoutMs: number }) => (idle.push(options.idleTimeoutMs), Promise.resolve()) } as unknown as KubeClient;
    const events = await new Promise((resolve) => void kubeWatchSource(recording).watch('/api/v1/namespaces/default/events', { timeoutSeconds: '450' }, () => {}, resolve));
    const nodes = await new Promise((resolve) => void kubeWatchSource(recording, { idleTimeoutMs: 90_000 }).watch('/api/v1/nodes', { timeoutSeconds: '450' }, () => {}, resolve));
    expect([events, nodes]).toEqual([null, null]);
    expect(idle).toEqual([480_000, 90_000]);
  });

  it('lists every page the API server has: its continue token is read from the JSON as sent (metadata.continue)', async () => {
    const api = await localApiServer((req, res) => {
      const token = new URL(req.url ?? '', 'http://x').searchParams.get('continue');
      if (req.url?.includes('watch=true')) return res.writeHead(200).write('');
      const page = token === null ? { items: [obj('a', 1)], metadata: { resourceVersion: '9', continue: 'p2' } } : { items: [obj('b', 2)], metadata: { resourceVersion: '9' } };
      res.end(JSON.stringify(page));
    });
    const informer = new Informer<Obj, Obj>({
      name: 'objs',
      path: '/api/v1/objs',
      watch: kubeWatchSource(api.client),
      list: kubeLister<Obj>(api.client, '/api/v1/objs', {}),
      key: (o) => o.metadata.name,
      transform: (o) => o,
      resourceVersion: (o) => o.metadata.resourceVersion,
      pageSize: 1,
    });
    await informer.start();
    expect([...informer.keys()].sort()).toEqual(['a', 'b']);
    await informer.stop();
    await api.close();
  });

  it('lists one page per call with limit and continue, and the selector', async () => {
    const api = await localApiServer((_req, res) => res.end(JSON.stringify({ items: [], metadata: { resourceVersion: '5' } })));
    const list = kubeLister(api.client, '/api/v1/nodes', { labelSelector: 'a=b', fieldSelector: undefined });
    await list({ limit: 500 });
    await list({ limit: 500, continue: 'tok' });
    expect(api.urls).toEqual(['/api/v1/nodes?labelSelector=a%3Db&limit=500', '/api/v1/nodes?labelSelector=a%3Db&limit=500&continue=tok']);
    await api.close();
  });
});
