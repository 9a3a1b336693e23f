import { randomBytes } from 'node:crypto';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../common/kube/kubeClient.js';
import { kubeconfigCredentials } from '../../common/kube/kubeconfigFile.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { ControllerLoop } from '../../controller/controllerLoop.js';
import { Informer, type InitialSync, kubeLister, kubeWatchSource } from '../../controller/informer.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { DryRunProvider } from '../../controller/providers/dryRunProvider.js';
import { type ControlPlane, startControlPlane } from '../cluster/controlPlane.js';
import { testCluster } from '../cluster/testCluster.js';
import { eventually } from '../support/cliProcess.js';
import { logLines } from '../support/logLines.js';

/**
 * The controller's Node cache and work queue against the real kube-apiserver: lists come in
 * pages, a watch that lost events relists and converges, the cache keeps only the slim shape,
 * and an update to one node reconciles that node only.
 */
// The shared control plane, and one of this file's own whose etcd is compacted every second
// and whose watches are served by etcd itself (no watch cache, which replays its whole window),
// so that a watch from an old resourceVersion meets the real 410 Gone.
let compacted: ControlPlane;
const shared = testCluster().adminKubeConfig();
let kubeConfig = shared;
let kubeconfigPath = testCluster().kubeconfig;
let core = shared.makeApiClient(CoreV1Api);
/** A client as the controller makes one, on the control plane in use. */
const controllerClient = () => new KubeClient(kubeconfigCredentials(kubeconfigPath));
const label = 'nodepulse.io/cache-test';
const group = `c${randomBytes(3).toString('hex')}`;
const selector = `${label}=${group}`;
const names = Array.from({ length: 120 }, (_, i) => `cache-${group}-${String(i).padStart(3, '0')}`);

/** A Node as a kubelet leaves it: the fields the cache must not keep (images, capacity, addresses, managed fields). */
function kubeletNode(name: string): V1Node {
  return {
    metadata: { name, labels: { [label]: group, 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name }, annotations: { 'node.alpha.kubernetes.io/ttl': '0' } },
    spec: { providerID: `kind://docker/${name}`, podCIDR: '10.244.1.0/24' },
  };
}

async function setStatus(name: string, heartbeat: Date, api = core): Promise<void> {
  await api.patchNodeStatus(
    {
      name,
      body: {
        status: {
          conditions: [
            { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: heartbeat, lastTransitionTime: new Date(Date.now() - 3_600_000) },
            { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'ok', lastHeartbeatTime: heartbeat, lastTransitionTime: heartbeat },
          ],
          capacity: { cpu: '4', memory: '16Gi', pods: '110' },
          images: [{ names: ['mcr.microsoft.com/oss/kubernetes/pause:3.6'], sizeBytes: 299_514 }],
          addresses: [{ type: 'InternalIP', address: '10.224.0.4' }],
          nodeInfo: { operatingSystem: 'linux', bootID: `boot-${name}`, architecture: 'amd64', containerRuntimeVersion: '', kernelVersion: '', kubeProxyVersion: '', kubeletVersion: '', machineID: '', osImage: '', systemUUID: '' },
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

async function createFleet(api: CoreV1Api): Promise<void> {
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let name = queue.shift(); name; name = queue.shift()) {
        await api.createNode({ body: kubeletNode(name) });
        await setStatus(name, new Date(), api);
      }
    }),
  );
}

function recordingInformer(options: { pageSize: number; initialSync: InitialSync; oldWatch?: { from: string; nth: number } }) {
  const pages: Array<{ limit: number; continue?: string; items: number }> = [];
  const client = controllerClient();
  const watch = kubeWatchSource(client);
  const controllerList = kubeLister<V1Node>(client, '/api/v1/nodes', { labelSelector: selector });
  let watches = 0;
  /** The parameters of every watch asked for, and a way to end each as a dropped connection would. */
  const streams: Array<{ params: Record<string, string>; opened: Promise<AbortController> }> = [];
  const informer = new Informer<V1Node, V1Node>({
    name: 'nodes',
    path: '/api/v1/nodes',
    watch: {
      watch: (path, params, cb, done) => {
        watches += 1;
        // A resourceVersion from long ago: the API server answers 410 Gone, as after missed events.
        const from = watches === options.oldWatch?.nth ? { ...params, resourceVersion: options.oldWatch.from } : params;
        const opened = watch.watch(path, from, cb, done);
        streams.push({ params: from, opened });
        return opened;
      },
    },
    list: async (page) => {
      const list = await controllerList(page);
      pages.push({ ...page, items: list.items.length });
      return list;
    },
    watchParams: { labelSelector: selector },
    key: (n) => n.metadata?.name,
    transform: (n) => n,
    resourceVersion: (n) => n.metadata?.resourceVersion,
    pageSize: options.pageSize,
    initialSync: options.initialSync,
  });
  return { informer, pages, streams };
}

describe('the controller cache on the real API server', () => {
  beforeAll(async () => {
    compacted = await startControlPlane({ profile: 'apiserver', extraApiserverArgs: ['--etcd-compaction-interval=1s', '--watch-cache=false'] });
    kubeConfig = compacted.adminKubeConfig();
    kubeconfigPath = compacted.kubeconfig;
    core = kubeConfig.makeApiClient(CoreV1Api);
    await createFleet(core);
  }, 120_000);

  afterAll(async () => {
    await compacted?.stop();
    kubeConfig = shared;
    kubeconfigPath = testCluster().kubeconfig;
    core = shared.makeApiClient(CoreV1Api);
  });

  it('fills the cache from one streaming list (a watch with sendInitialEvents=true), with no LIST, and converges on the whole fleet', async () => {
    const { informer, pages, streams } = recordingInformer({ pageSize: 50, initialSync: 'watchList' });
    await informer.start();
    await informer.stop();
    expect(pages).toEqual([]);
    expect(streams.map((s) => s.params)).toEqual([expect.objectContaining({ sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: 'true' })]);
    expect(informer.size).toBe(120);
    expect([...informer.keys()].sort()).toEqual(names);
  });

  it('with cache.initialSync list, lists the fleet in pages of the configured size, never in one response', async () => {
    const { informer, pages } = recordingInformer({ pageSize: 50, initialSync: 'list' });
    await informer.start();
    await informer.stop();
    expect(pages.map((p) => p.items)).toEqual([50, 50, 20]);
    expect(pages[0]?.continue).toBeUndefined();
    expect(pages.slice(1).every((p) => typeof p.continue === 'string' && p.continue.length > 0)).toBe(true);
    expect(informer.size).toBe(120);
  });

  it('a watch that lost events (410 Gone) relists in pages and converges on what changed meanwhile', async () => {
    // Writes, then a compaction: resourceVersion 1 is history now.
    for (const name of names.slice(0, 5)) await setStatus(name, new Date());
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const { informer, pages } = recordingInformer({ pageSize: 50, initialSync: 'list', oldWatch: { from: '1', nth: 1 } });
    await informer.start();
    // Created after the first list: only a relist (or a working watch) can bring it in.
    const late = `cache-${group}-late`;
    await core.createNode({ body: kubeletNode(late) });
    await eventually('the relist to bring the late node in', async () => (informer.get(late) ? true : undefined), 20_000);
    await informer.stop();
    expect(informer.stats.relists).toBeGreaterThanOrEqual(1);
    expect(pages.length).toBeGreaterThanOrEqual(6);
    expect(pages.every((p) => p.items <= 50)).toBe(true);
    expect(informer.size).toBe(121);
    await core.deleteNode({ name: late });
  });

  it('a watch that lost events (410 Gone) relists by a new streaming list and converges on what changed meanwhile', async () => {
    for (const name of names.slice(0, 5)) await setStatus(name, new Date());
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const { informer, pages, streams } = recordingInformer({ pageSize: 50, initialSync: 'watchList', oldWatch: { from: '1', nth: 2 } });
    await informer.start();
    // The connection drops; the watch after it starts from long ago and meets 410 Gone.
    (await streams[0]?.opened)?.abort();
    const late = `cache-${group}-late2`;
    await core.createNode({ body: kubeletNode(late) });
    await eventually('the relist to bring the late node in', async () => (informer.get(late) ? true : undefined), 20_000);
    await informer.stop();
    expect(streams[1]?.params).toMatchObject({ resourceVersion: '1' });
    expect(streams[1]?.params.sendInitialEvents).toBeUndefined();
    expect(streams[2]?.params).toMatchObject({ sendInitialEvents: 'true' });
    expect(informer.stats.relists).toBeGreaterThanOrEqual(1);
    expect(pages).toEqual([]);
    expect(informer.size).toBe(121);
    await core.deleteNode({ name: late });
  });
});

describe('the controller loop on the real API server', () => {
  let loop: ControllerLoop;
  const { log, lines } = logLines();
  const leadership = new AbortController();

  beforeAll(async () => {
    await createFleet(core);
    const config = controllerConfigSchema.parse({
      nodeSelector: selector,
      passIntervalSeconds: 3600,
      quarantine: { enabled: true, conditions: ['KonnectivityProblem'] },
    });
    loop = new ControllerLoop(controllerClient(), {
      config,
      provider: new DryRunProvider(),
      metrics: new ControllerMetrics(false),
      log,
      isLeader: () => !leadership.signal.aborted,
      leaseAnnotations: () => ({}),
    });
    await loop.start();
    void loop.lead(leadership.signal);
    await eventually('the first full pass', async () => (names.every((n) => reconciled().includes(n)) ? true : undefined), 30_000);
  }, 60_000);

  afterAll(async () => {
    leadership.abort();
    await loop?.stop();
    await Promise.all(names.map((name) => core.deleteNode({ name }).catch(() => undefined)));
  });

  const reconciled = () => lines.filter((l) => l.msg === 'reconciled').map((l) => String(l.node));

  it('keeps only the slim shape of a Node in its cache, also after an update', async () => {
    const name = names[7] ?? '';
    await setStatus(name, new Date());
    await eventually('the update in the cache', async () => (loop.cachedNode(name)?.status?.conditions?.length === 1 ? true : undefined), 10_000);
    const cached = loop.cachedNode(name) as V1Node;
    expect(Object.keys(cached).sort()).toEqual(['metadata', 'spec', 'status']);
    expect(Object.keys(cached.metadata ?? {}).sort()).toEqual(['creationTimestamp', 'labels', 'name', 'resourceVersion', 'uid']);
    // Only the labels decisions read: kubernetes.io/os, not the hostname nor the test's own.
    expect(cached.metadata?.labels).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(cached.metadata?.annotations).toBeUndefined();
    // Every taint stays (a taint write replaces the list): here the one TaintNodesByCondition admission puts on a new Node.
    expect(cached.spec).toEqual({ providerID: `kind://docker/${name}`, taints: [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }] });
    expect(Object.keys(cached.status ?? {}).sort()).toEqual(['conditions', 'nodeInfo']);
    // Ready only (MemoryPressure is not a watched condition), without reason or message.
    expect(cached.status?.conditions?.map((c) => Object.keys(c).sort())).toEqual([['lastHeartbeatTime', 'lastTransitionTime', 'status', 'type']]);
    expect(cached.status?.nodeInfo).toEqual({ operatingSystem: 'linux', bootID: `boot-${name}` });
    expect(JSON.stringify(cached)).not.toMatch(/managedFields|images|capacity|addresses|podCIDR/);
  });

  it('an update to one node reconciles that node only', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = lines.length;
    const name = names[42] ?? '';
    await setStatus(name, new Date());
    await eventually('the node to be reconciled', async () => (lines.slice(before).some((l) => l.msg === 'reconciled' && l.node === name) ? true : undefined), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = lines.slice(before).filter((l) => l.msg === 'reconciled').map((l) => String(l.node));
    expect(new Set(after)).toEqual(new Set([name]));
  });
});
