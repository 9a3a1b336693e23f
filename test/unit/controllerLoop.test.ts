import type { V1Node } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from '../../common/contract.js';
import { KubeApiError, type KubeClient, type RequestOptions } from '../../common/kube/kubeClient.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { ControllerLoop } from '../../controller/controllerLoop.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { DryRunProvider } from '../../controller/providers/dryRunProvider.js';
import { logLines } from '../support/logLines.js';

/**
 * The controller loop against an in-memory API server behind the KubeClient's interface: what
 * it writes to a Node for one decision, counted request by request.
 */
interface Patch {
  node: string;
  body: { metadata?: { annotations?: Record<string, string | null>; resourceVersion?: string }; spec?: unknown };
}

class MemoryApiServer {
  readonly nodes = new Map<string, V1Node>();
  readonly patches: Patch[] = [];
  private version = 100;
  private readonly nodeWatchers = new Set<(event: { type: string; object: V1Node }) => void>();

  add(node: V1Node): void {
    this.nodes.set(node.metadata?.name ?? '', this.stamp(node));
  }

  /** A kubelet's status report: stored with a new resourceVersion and sent to the watches. */
  update(name: string, change: (node: V1Node) => void): void {
    const node = structuredClone(this.nodes.get(name) as V1Node);
    change(node);
    this.publish(this.stamp(node));
  }

  readonly client = {
    request: async (method: string, path: string, options: RequestOptions = {}): Promise<unknown> => {
      const url = new URL(path, 'http://api');
      if (method === 'GET' && url.pathname === '/api/v1/nodes') return { items: [...this.nodes.values()].map((n) => structuredClone(n)), metadata: { resourceVersion: String(this.version) } };
      if (method === 'GET' && url.pathname.endsWith('/events')) return { items: [], metadata: { resourceVersion: String(this.version) } };
      if (method === 'POST' && url.pathname.endsWith('/events')) return options.body;
      const name = decodeURIComponent(url.pathname.split('/').pop() ?? '');
      const node = this.nodes.get(name);
      if (!node) throw new KubeApiError(`${method} ${path}: 404`, 404, 'NotFound');
      if (method === 'GET') return structuredClone(node);
      if (method === 'PATCH') return this.patch(name, node, options.body as Patch['body']);
      throw new Error(`unexpected ${method} ${path}`);
    },
    watch: (path: string, onEvent: (event: { type: string; object: V1Node }) => void, options: { signal?: AbortSignal; onOpen?: () => void }): Promise<void> => {
      // An API server without the streaming list, as one with the WatchList feature gate off answers.
      if (path.includes('sendInitialEvents=true')) return Promise.reject(new KubeApiError(`GET ${path}: 422 sendInitialEvents is forbidden`, 422, 'Invalid'));
      options.onOpen?.();
      if (path.startsWith('/api/v1/nodes')) this.nodeWatchers.add(onEvent);
      return new Promise((_, reject) =>
        options.signal?.addEventListener('abort', () => {
          this.nodeWatchers.delete(onEvent);
          reject(new KubeApiError(`GET ${path}: aborted`, 0, 'Aborted'));
        }),
      );
    },
  } as unknown as KubeClient;

  private patch(name: string, node: V1Node, body: Patch['body']): V1Node {
    this.patches.push({ node: name, body: structuredClone(body) });
    if (body.metadata?.resourceVersion !== undefined && body.metadata.resourceVersion !== node.metadata?.resourceVersion) {
      throw new KubeApiError(`PATCH ${name}: 409 the object has been modified`, 409, 'Conflict');
    }
    const next = structuredClone(node);
    const annotations: Record<string, string> = { ...next.metadata?.annotations };
    for (const [key, value] of Object.entries(body.metadata?.annotations ?? {})) {
      if (value === null) delete annotations[key];
      else annotations[key] = value;
    }
    next.metadata = { ...next.metadata, annotations };
    const written = this.stamp(next);
    this.publish(written);
    return structuredClone(written);
  }

  private stamp(node: V1Node): V1Node {
    this.version += 1;
    node.metadata = { ...node.metadata, resourceVersion: String(this.version) };
    return node;
  }

  private publish(node: V1Node): void {
    this.nodes.set(node.metadata?.name ?? '', node);
    for (const watcher of this.nodeWatchers) watcher({ type: 'MODIFIED', object: structuredClone(node) });
  }
}

const t0 = Date.parse('2026-12-01T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function readyNode(name: string): V1Node {
  return {
    metadata: { name, uid: `uid-${name}`, creationTimestamp: iso(t0 - 86_400_000) as unknown as Date, labels: { 'kubernetes.io/os': 'linux' } },
    spec: { providerID: `azure:///${name}` },
    status: {
      conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: iso(t0) as unknown as Date, lastTransitionTime: iso(t0 - 86_400_000) as unknown as Date }],
      nodeInfo: { operatingSystem: 'linux', bootID: `boot-${name}` } as NonNullable<V1Node['status']>['nodeInfo'],
    },
  };
}

function setup() {
  let clock = t0;
  const api = new MemoryApiServer();
  for (let i = 0; i < 10; i += 1) api.add(readyNode(`node-${i}`));
  const { log, lines } = logLines();
  const config = controllerConfigSchema.parse({
    passIntervalSeconds: 3600,
    detection: { notReadySeconds: 60, remediateAfterSeconds: 0 },
    safety: { minStartSpacingSeconds: 0 },
  });
  const leadership = new AbortController();
  const loop = new ControllerLoop(api.client, {
    config,
    provider: new DryRunProvider(),
    metrics: new ControllerMetrics(false),
    log,
    isLeader: () => !leadership.signal.aborted,
    leaseAnnotations: () => ({}),
    now: () => clock,
  });
  const reconciled = (name: string) => lines.filter((l) => l.msg === 'reconciled' && l.node === name).length;
  /** The node's kubelet reports NotReady, since `since`, at the current time. */
  const notReady = (name: string, since: number) =>
    api.update(name, (n) => {
      n.status = { ...n.status, conditions: [{ type: 'Ready', status: 'False', lastHeartbeatTime: iso(clock) as unknown as Date, lastTransitionTime: iso(since) as unknown as Date }] };
    });
  return {
    api,
    loop,
    config,
    leadership,
    reconciled,
    notReady,
    advance: (ms: number) => (clock += ms),
    now: () => clock,
    stop: async () => {
      leadership.abort();
      await loop.stop();
    },
  };
}

let running: ReturnType<typeof setup> | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function leading() {
  const t = setup();
  running = t;
  await t.loop.start();
  void t.loop.lead(t.leadership.signal);
  await expect.poll(() => t.reconciled('node-9')).toBeGreaterThan(0);
  return t;
}

describe('controller loop: one write per decision', () => {
  it('a node seen Ready that fails long enough to repair gets the ready-seen mark and the remediation state in one write', async () => {
    const t = await leading();
    t.advance(120_000);
    t.notReady('node-3', t.now() - 90_000);
    await expect.poll(() => t.api.patches.filter((p) => p.node === 'node-3').length).toBeGreaterThanOrEqual(2);
    const writes = t.api.patches.filter((p) => p.node === 'node-3').map((p) => p.body.metadata?.annotations ?? {});
    const phases = writes.map((a) => (JSON.parse(a[t.config.stateAnnotation] ?? '{}') as { phase?: string }).phase);
    // The decision (the step started), then the dry-run step's outcome: no write of the mark alone before it.
    expect(phases).toEqual(['started', 'ended']);
    expect(writes[0]?.[keys.readySeen]).toBe(iso(t.now()));
    expect(JSON.parse(writes[0]?.[t.config.stateAnnotation] ?? '{}')).toMatchObject({ step: 'reboot', phase: 'started', attempt: 1 });
  });

  it('a node seen Ready that has just failed (nothing decided yet) gets the ready-seen mark alone, once', async () => {
    const t = await leading();
    t.advance(120_000);
    t.notReady('node-5', t.now());
    await expect.poll(() => t.reconciled('node-5')).toBeGreaterThan(1);
    const writes = t.api.patches.filter((p) => p.node === 'node-5');
    expect(writes.map((w) => w.body.metadata?.annotations)).toEqual([{ [keys.readySeen]: iso(t.now()) }]);
    // The mark is on the Node now: the next look at it writes nothing more.
    t.advance(10_000);
    t.notReady('node-5', t.now() - 10_000);
    await expect.poll(() => t.reconciled('node-5')).toBeGreaterThan(3);
    expect(t.api.patches.filter((p) => p.node === 'node-5')).toHaveLength(1);
  });
});
