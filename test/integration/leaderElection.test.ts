import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeLeaseStore } from '../../controller/kubeLeaseStore.js';
import { LeaderElector, runLeaderElection, type ElectionTiming, type LeaseStore } from '../../controller/leaderElection.js';
import { testCluster } from '../cluster/testCluster.js';

const manifest = (name: string) => fileURLToPath(new URL(`../../manifests/base/${name}`, import.meta.url));
const timing: ElectionTiming = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };
const namespace = 'nodepulse';
// The controller's Role allows get/update on this one Lease name only.
const leaseName = 'nodepulse-controller';

/** A replica's connection to the API server, which the test can freeze like a network partition. */
function partitionable(store: LeaseStore) {
  let frozen = false;
  const hang = (signal: AbortSignal) =>
    new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  return {
    freeze: () => (frozen = true),
    store: {
      read: (signal) => (frozen ? hang(signal) : store.read(signal)),
      write: (record, rv, signal) => (frozen ? hang(signal) : store.write(record, rv, signal)),
    } satisfies LeaseStore,
  };
}

describe('leader election against the real API server, as the controller ServiceAccount', () => {
  const cluster = testCluster();
  let api: CoordinationV1Api;

  beforeAll(async () => {
    await cluster.kubectl(['apply', '-f', manifest('namespace.yaml'), '-f', manifest('controller-rbac.yaml')]);
    const config = new KubeConfig();
    config.loadFromFile(await cluster.serviceAccountKubeconfig(namespace, 'nodepulse-controller'));
    api = config.makeApiClient(CoordinationV1Api);
  });

  afterAll(async () => {
    await cluster.kubectl(['delete', 'lease', '-n', namespace, leaseName, '--ignore-not-found']);
  });

  it('a partitioned leader stops acting before its lease expires, and the other replica takes over only after', async () => {
    const a = partitionable(kubeLeaseStore(api, namespace, leaseName));
    const b = kubeLeaseStore(api, namespace, leaseName);
    const electorA = new LeaderElector(a.store, 'replica-a', timing);
    const electorB = new LeaderElector(b, 'replica-b', timing);
    const stopA = new AbortController();
    const stopB = new AbortController();
    let aLeading: AbortSignal | undefined;
    let aStoppedAt = 0;
    let bStartedAt = 0;
    const runA = runLeaderElection(electorA, timing, stopA.signal, (s) => {
      aLeading = s;
      s.addEventListener('abort', () => (aStoppedAt = Date.now()));
    });
    await waitFor(() => aLeading !== undefined, 10_000);
    const runB = runLeaderElection(electorB, timing, stopB.signal, () => (bStartedAt = Date.now()));
    await sleep(1_500);
    expect(bStartedAt).toBe(0);

    try {
      const lease = await api.readNamespacedLease({ name: leaseName, namespace });
      expect(lease.spec).toMatchObject({ holderIdentity: 'replica-a', leaseDurationSeconds: 3 });
      const transitions = lease.spec?.leaseTransitions ?? 0;
      const frozenAt = Date.now();
      a.freeze();
      await waitFor(() => bStartedAt > 0, 10_000);
      expect(aStoppedAt).toBeGreaterThan(0);
      expect(aStoppedAt - frozenAt).toBeLessThanOrEqual(timing.renewDeadlineMs);
      expect(bStartedAt).toBeGreaterThan(aStoppedAt);
      expect((await api.readNamespacedLease({ name: leaseName, namespace })).spec).toMatchObject({
        holderIdentity: 'replica-b',
        leaseTransitions: transitions + 1,
      });
    } finally {
      stopA.abort();
      stopB.abort();
      await Promise.all([runA, runB]);
    }
  });

  it('a leader that shuts down releases the lease and the other replica takes over at once', async () => {
    const stopA = new AbortController();
    const stopB = new AbortController();
    let aLeading = false;
    let bStartedAt = 0;
    const runA = runLeaderElection(new LeaderElector(kubeLeaseStore(api, namespace, leaseName), 'replica-a', timing), timing, stopA.signal, () => (aLeading = true));
    await waitFor(() => aLeading, 10_000);
    const runB = runLeaderElection(new LeaderElector(kubeLeaseStore(api, namespace, leaseName), 'replica-b', timing), timing, stopB.signal, () => (bStartedAt = Date.now()));
    try {
      await sleep(500);
      const stoppedAt = Date.now();
      stopA.abort();
      await runA;
      await waitFor(() => bStartedAt > 0, 5_000);
      // Well inside the lease duration: the release, not the expiry, handed over.
      expect(bStartedAt - stoppedAt).toBeLessThan(timing.leaseDurationMs);
    } finally {
      stopA.abort();
      stopB.abort();
      await Promise.all([runA, runB]);
    }
  });

  it('the run-time pause switch on the Lease is visible to the elector', async () => {
    const elector = new LeaderElector(kubeLeaseStore(api, namespace, leaseName), 'replica-c', timing);
    await cluster.kubectl(['annotate', 'lease', '-n', namespace, leaseName, 'nodepulse.io/paused=true', '--overwrite']);
    await elector.attempt(AbortSignal.timeout(5_000));
    expect(elector.annotations['nodepulse.io/paused']).toBe('true');
    await cluster.kubectl(['annotate', 'lease', '-n', namespace, leaseName, 'nodepulse.io/paused-']);
    await elector.release(AbortSignal.timeout(5_000));
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(50);
  }
}
