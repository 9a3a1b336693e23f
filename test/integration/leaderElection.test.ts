import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, KubeConfig, Watch, type V1Lease } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../../common/contract.js';
import { KubeClient } from '../../common/kube/kubeClient.js';
import { kubeconfigCredentials } from '../../common/kube/kubeconfigFile.js';
import type { KubeCredentials } from '../../common/kube/kubeCredentials.js';
import { kubeLeaseStore } from '../../controller/kubeLeaseStore.js';
import { LeaderElector, runLeaderElection, type ElectionTiming, type LeaseStore } from '../../controller/leaderElection.js';
import { testCluster } from '../cluster/testCluster.js';
import { seededRandom } from '../support/seededRandom.js';

const manifest = (name: string) => fileURLToPath(new URL(`../../manifests/base/${name}`, import.meta.url));
const timing: ElectionTiming = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };
const namespace = 'nodepulse';
// The controller's Role allows get/update on this one Lease name only.
const leaseName = 'nodepulse-controller';

/** Hangs until `signal` aborts, as a call across a network partition does. */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

/** A replica's connection to the API server, which the test can freeze like a network partition. */
function partitionable(store: LeaseStore) {
  let frozen = false;
  return {
    freeze: () => (frozen = true),
    store: {
      read: (signal) => (frozen ? hang(signal) : store.read(signal)),
      write: (record, annotations, rv, signal) => (frozen ? hang(signal) : store.write(record, annotations, rv, signal)),
    } satisfies LeaseStore,
  };
}

/**
 * A relay in front of the API server that can hold back everything the server answers:
 * requests still reach the server and take effect, their answers do not come back until
 * release(). The client speaks plain HTTP to it on loopback and the relay speaks TLS to the
 * API server, so only answers are held, never a TLS handshake.
 */
async function answerHoldingRelay(target: URL, caPem: string) {
  let holding = false;
  let closedWhileHolding = 0;
  const flushes = new Set<() => void>();
  const clients = new Set<Socket>();
  const server: Server = createServer((client: Socket) => {
    clients.add(client);
    const upstream = tlsConnect({ host: target.hostname, port: Number(target.port), ca: caPem });
    const queue: Buffer[] = [];
    const flush = () => {
      for (const chunk of queue.splice(0)) client.write(chunk);
    };
    flushes.add(flush);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (holding || queue.length > 0) queue.push(chunk);
      else client.write(chunk);
    });
    client.on('close', () => {
      if (holding) closedWhileHolding += 1;
      clients.delete(client);
      flushes.delete(flush);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      for (const flush of flushes) flush();
    },
    /** Client connections that closed while answers were held back: requests torn down by their caller. */
    closedWhileHolding: () => closedWhileHolding,
    close: () => {
      for (const client of clients) client.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('leader election against the real API server, as the controller ServiceAccount', () => {
  const cluster = testCluster();
  let config: KubeConfig;
  let credentials: KubeCredentials;
  let api: KubeClient;
  let admin: CoordinationV1Api;

  beforeAll(async () => {
    await cluster.kubectl(['apply', '-f', manifest('namespace.yaml'), '-f', manifest('controller-rbac.yaml')]);
    const saKubeconfig = await cluster.serviceAccountKubeconfig(namespace, 'nodepulse-controller');
    config = new KubeConfig();
    config.loadFromFile(saKubeconfig);
    credentials = kubeconfigCredentials(saKubeconfig);
    api = new KubeClient(credentials);
    admin = cluster.adminKubeConfig().makeApiClient(CoordinationV1Api);
  });

  beforeEach(async () => {
    await cluster.kubectl(['delete', 'lease', '-n', namespace, leaseName, '--ignore-not-found']);
  });

  afterAll(async () => {
    await cluster.kubectl(['delete', 'lease', '-n', namespace, leaseName, '--ignore-not-found']);
  });

  /** The SA's client, talking through `server` instead of straight to the API server. */
  function apiThrough(server: string): KubeClient {
    // Plain HTTP to the loopback relay.
    return new KubeClient({ ...credentials, server });
  }

  const caPem = () => Buffer.from(config.getCurrentCluster()?.caData ?? '', 'base64').toString('utf8');
  const readLease = () => admin.readNamespacedLease({ name: leaseName, namespace });

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
    await delay(1_500);
    expect(bStartedAt).toBe(0);

    try {
      const lease = await readLease();
      expect(lease.spec).toMatchObject({ holderIdentity: 'replica-a', leaseDurationSeconds: 3 });
      const transitions = lease.spec?.leaseTransitions ?? 0;
      const frozenAt = Date.now();
      a.freeze();
      await waitFor(() => bStartedAt > 0, 10_000);
      expect(aStoppedAt).toBeGreaterThan(0);
      expect(aStoppedAt - frozenAt).toBeLessThanOrEqual(timing.renewDeadlineMs);
      expect(bStartedAt).toBeGreaterThan(aStoppedAt);
      expect((await readLease()).spec).toMatchObject({ holderIdentity: 'replica-b', leaseTransitions: transitions + 1 });
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
      await delay(500);
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
    await elector.attempt(AbortSignal.timeout(5_000));
    await cluster.kubectl(['annotate', 'lease', '-n', namespace, leaseName, `${keys.paused}=true`, '--overwrite']);
    await elector.attempt(AbortSignal.timeout(5_000));
    expect(elector.annotations[keys.paused]).toBe('true');
    await elector.release(AbortSignal.timeout(5_000));
  });

  it('a read whose signal aborts while the API server\'s answer is on its way returns at once without leadership, and its connection is torn down', async () => {
    const relay = await answerHoldingRelay(new URL(cluster.server), caPem());
    try {
      const errors: unknown[] = [];
      const elector = new LeaderElector(kubeLeaseStore(apiThrough(relay.url), namespace, leaseName), 'replica-d', timing, Date.now, {
        onError: (err) => errors.push(err),
      });
      relay.hold();
      const stop = new AbortController();
      const attempt = elector.attempt(stop.signal);
      await delay(300);
      const abortedAt = Date.now();
      stop.abort();
      const outcome = await Promise.race([attempt, delay(2_000, 'still waiting for the API server' as const)]);
      expect(outcome).toBe(false);
      expect(Date.now() - abortedAt).toBeLessThan(500);
      expect(elector.isLeader()).toBe(false);
      expect(errors).toEqual([stop.signal.reason]);
      // The request itself was torn down, not merely left behind.
      await waitFor(() => relay.closedWhileHolding() > 0, 1_000);
    } finally {
      relay.release();
      await relay.close();
    }
  });

  it('a takeover whose answer never comes back: the Lease names the replica, yet it does not lead, waits like anyone, and its release frees the Lease', async () => {
    const relay = await answerHoldingRelay(new URL(cluster.server), caPem());
    try {
      const real = kubeLeaseStore(apiThrough(relay.url), namespace, leaseName);
      let holdAfterRead = true;
      const store: LeaseStore = {
        async read(signal) {
          const lease = await real.read(signal);
          if (holdAfterRead) relay.hold();
          return lease;
        },
        write: (record, annotations, rv, signal) => real.write(record, annotations, rv, signal),
      };
      const elector = new LeaderElector(store, 'replica-e', timing);
      const stop = new AbortController();
      const attempt = elector.attempt(stop.signal);
      await waitForAsync(async () => (await readLease().catch(() => undefined))?.spec?.holderIdentity === 'replica-e', 5_000);
      stop.abort();
      expect(await Promise.race([attempt, delay(2_000, 'still waiting for the API server' as const)])).toBe(false);
      expect(elector.isLeader()).toBe(false);
      expect(elector.leadership()).toBeUndefined();
      holdAfterRead = false;
      relay.release();
      // It sees its own name on a Lease it never saw itself win: it waits a lease duration.
      expect(await elector.attempt(AbortSignal.timeout(5_000))).toBe(false);
      await elector.release(AbortSignal.timeout(5_000));
      expect((await readLease()).spec?.holderIdentity).toBe('');
    } finally {
      relay.release();
      await relay.close();
    }
  });

  it('a new leader reads what its predecessor remembered, and the pause switch others set survives the leader\'s writes', async () => {
    const a = partitionable(kubeLeaseStore(api, namespace, leaseName));
    const electorA = new LeaderElector(a.store, 'replica-f', timing);
    const stopA = new AbortController();
    const stopB = new AbortController();
    let aLeading = false;
    const runA = runLeaderElection(electorA, timing, stopA.signal, () => (aLeading = true));
    let runB: Promise<void> | undefined;
    try {
      await waitFor(() => aLeading, 10_000);
      await cluster.kubectl(['annotate', 'lease', '-n', namespace, leaseName, `${keys.paused}=false`]);
      const memory = JSON.stringify({ stormEndedAt: new Date().toISOString() });
      await waitFor(() => electorA.annotations[keys.paused] === 'false', 5_000);
      expect(electorA.remember(keys.fleetMemory, memory)).toBe(true);
      await waitForAsync(async () => (await readLease()).metadata?.annotations?.[keys.fleetMemory] === memory, 5_000);
      // a dies without a word; b takes over once a's lease ran out, and finds the memory.
      a.freeze();
      const electorB = new LeaderElector(kubeLeaseStore(api, namespace, leaseName), 'replica-g', timing);
      let bLeading = false;
      runB = runLeaderElection(electorB, timing, stopB.signal, () => (bLeading = true));
      await waitFor(() => bLeading, 10_000);
      expect(electorB.annotations[keys.fleetMemory]).toBe(memory);
      expect(electorB.annotations[keys.paused]).toBe('false');
    } finally {
      stopA.abort();
      stopB.abort();
      await Promise.all([runA, runB]);
    }
  });

  it('an annotation the API server refuses is dropped and costs the leader nothing', async () => {
    const errors: string[] = [];
    const elector = new LeaderElector(kubeLeaseStore(api, namespace, leaseName), 'replica-h', timing, Date.now, { onError: (err) => errors.push(String(err)) });
    expect(await elector.attempt(AbortSignal.timeout(5_000))).toBe(true);
    elector.remember('not an annotation key!', 'x');
    await elector.attempt(AbortSignal.timeout(5_000));
    expect(errors).toEqual([expect.stringMatching(/refused the remembered annotation\(s\) not an annotation key!, so they are dropped: .*HTTP 422/)]);
    expect(await elector.attempt(AbortSignal.timeout(5_000))).toBe(true);
    expect((await readLease()).spec?.holderIdentity).toBe('replica-h');
    await elector.release(AbortSignal.timeout(5_000));
  });

  it('never two leaders: three replicas through many lease changes, the leader killed, cut off, or aborted mid-renewal at random', { timeout: 60_000 }, async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    const chaosTiming: ElectionTiming = { leaseDurationMs: 2_000, renewDeadlineMs: 1_200, retryPeriodMs: 200 };
    const history: LeaseVersion[] = [];
    let watchEnded: unknown;
    const watch = await new Watch(cluster.adminKubeConfig()).watch(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      { fieldSelector: `metadata.name=${leaseName}` },
      (phase, lease: V1Lease) => {
        if (phase === 'ADDED' || phase === 'MODIFIED') history.push(leaseVersion(lease));
      },
      (err) => (watchEnded = err ?? 'closed'),
    );

    const intervals: Array<{ identity: string; start: number; end?: number }> = [];
    const processes: Array<{ identity: string; elector: LeaderElector; store: ChaosStore; stop: AbortController; run: Promise<void> }> = [];
    let started = 0;
    const start = () => {
      const identity = `replica-${(started += 1)}`;
      const store = new ChaosStore(kubeLeaseStore(api, namespace, leaseName), random);
      const elector = new LeaderElector(store, identity, chaosTiming);
      const stop = new AbortController();
      const run = runLeaderElection(elector, chaosTiming, stop.signal, (leadership) => {
        const interval: { identity: string; start: number; end?: number } = { identity, start: Date.now() };
        intervals.push(interval);
        leadership.addEventListener('abort', () => (interval.end = Date.now()), { once: true });
      });
      const replica = { identity, elector, store, stop, run };
      processes.push(replica);
      return replica;
    };
    const slots = [start(), start(), start()];
    let over = false;
    const replace = (replica: (typeof slots)[number], afterMs: number) => {
      setTimeout(() => {
        const slot = slots.indexOf(replica);
        if (slot >= 0 && !over) slots[slot] = start();
      }, afterMs);
    };

    // Sample every replica's own verdict on one clock: at no instant may two say "leader".
    let mostLeadersAtOnce = 0;
    const sampler = setInterval(() => {
      mostLeadersAtOnce = Math.max(mostLeadersAtOnce, processes.filter((p) => p.elector.isLeader()).length);
    }, 5);

    const faults: Record<string, number> = {};
    const chaosEnds = Date.now() + 42_000;
    try {
      while (Date.now() < chaosEnds) {
        // Strike a random moment into a leadership (a renewal may be under way), so most faults change the lease.
        await waitFor(() => slots.some((p) => p.elector.isLeader()), 10_000);
        await delay(random() * 800);
        const leader = slots.find((p) => p.elector.isLeader());
        const target = leader && random() < 0.9 ? leader : slots[Math.floor(random() * slots.length)];
        const follower = slots.find((p) => p !== leader);
        if (!target) continue;
        const kinds = [
          'shutdown',
          'crash',
          'partition',
          'lost answer',
          'slow network',
          ...(target === leader ? ['abort mid-renewal'] : []),
          ...(leader && follower ? ['slow read, leader cut off'] : []),
        ];
        const kind = kinds[Math.floor(random() * kinds.length)] ?? 'shutdown';
        faults[kind] = (faults[kind] ?? 0) + 1;
        switch (kind) {
          case 'shutdown':
            target.stop.abort();
            replace(target, random() * 500);
            break;
          case 'crash':
            // Nothing more gets through, not even the release; it believes it leads until its own deadline.
            target.store.partition();
            target.stop.abort();
            replace(target, random() * 1_000);
            break;
          case 'partition':
            target.store.partition();
            setTimeout(() => target.store.heal(), 500 + random() * 2_500);
            break;
          case 'lost answer':
            // Its next write lands on the server; the answer never comes back, nor anything after.
            target.store.loseNextAnswer();
            setTimeout(() => target.store.heal(), 1_000 + random() * 2_000);
            break;
          case 'slow network':
            target.store.slowFor(3_000, 1_500);
            break;
          case 'slow read, leader cut off': {
            // A follower's read reaches the server only after more than leaseDuration -
            // renewDeadline, and shows a renewal the leader made meanwhile, its last: the leader
            // is cut off just before the read lands. Counted from when the read was sent, that
            // renewal would expire while the leader still acts on it.
            const lag = 1_000 + random() * 150;
            const cutOff = lag - 10 - random() * 50;
            follower?.store.slowNextRead(lag, () =>
              setTimeout(() => {
                leader?.store.partition();
                // Long enough for a takeover to come first.
                setTimeout(() => leader?.store.heal(), 2_500 + random() * 1_500);
              }, cutOff),
            );
            // No other fault until the read has landed.
            await delay(lag + chaosTiming.retryPeriodMs);
            break;
          }
          case 'abort mid-renewal':
            // Shut down a few milliseconds into its next renewal: before it is sent, on the wire, or after it landed.
            target.store.onNextWrite(() =>
              setTimeout(() => {
                target.stop.abort();
                replace(target, random() * 500);
              }, random() * 8),
            );
            break;
        }
      }
    } finally {
      over = true;
      for (const p of processes) p.store.heal();
      for (const p of processes) p.stop.abort();
      await Promise.all(processes.map((p) => p.run));
      clearInterval(sampler);
      await delay(500);
      watch.abort();
    }

    const context = `seed ${seed} (set CHAOS_SEED to reuse it), faults ${JSON.stringify(faults)}`;

    expect(watchEnded, context).toBeUndefined();
    expect(mostLeadersAtOnce, context).toBe(1);

    // Each replica's leadership, from its start until its signal aborted: no two overlap.
    const closed = intervals.map((i) => ({ ...i, end: i.end ?? Number.POSITIVE_INFINITY })).sort((x, y) => x.start - y.start);
    for (const [index, interval] of closed.entries()) {
      const next = closed[index + 1];
      if (next) expect(next.start, `${next.identity} started leading while ${interval.identity} still led; ${context}`).toBeGreaterThanOrEqual(interval.end);
    }

    // The Lease's own history tells the same story.
    const terms = history.filter((v, i) => v.holder !== '' && (i === 0 || v.holder !== history[i - 1]?.holder || v.acquireTime !== history[i - 1]?.acquireTime));
    console.log(`leader election chaos: ${terms.length} holders in ${history.length} Lease versions, ${intervals.length} leaderships; ${context}`);
    expect(terms.length, context).toBeGreaterThanOrEqual(10);
    for (const [i, version] of history.entries()) {
      const previous = history[i - 1];
      if (!previous) continue;
      // leaseTransitions counts holders, as client-go's does: +1 exactly when a new one takes it.
      const newHolder = version.holder !== '' && version.holder !== previous.holder;
      expect(version.transitions, `transitions at ${version.resourceVersion}; ${context}`).toBe(previous.transitions + (newHolder ? 1 : 0));
      if (!terms.includes(version)) continue;
      if (previous.holder === '') {
        // Taken after a release: the releaser had stopped before it wrote the release.
        const releaser = history[i - 2]?.holder;
        for (const interval of closed.filter((x) => x.identity === releaser && x.start < previous.renewTime)) {
          expect(interval.end, `${releaser} led after its release; ${context}`).toBeLessThanOrEqual(previous.renewTime);
        }
      } else {
        // Taken over: no sooner than a lease duration after the previous holder's last renewal
        // began (the taker counts from when it saw that renewal, which came later) ...
        expect(version.acquireTime - previous.renewTime, `takeover by ${version.holder} from ${previous.holder}; ${context}`).toBeGreaterThanOrEqual(chaosTiming.leaseDurationMs);
        // ... and by then the previous holder had stopped: it stops a renew deadline after that
        // renewal began, its signal a timer's lateness after that.
        for (const interval of closed.filter((x) => x.identity === previous.holder && x.start < version.acquireTime)) {
          expect(interval.end, `${previous.holder} still led when ${version.holder} took over; ${context}`).toBeLessThanOrEqual(previous.renewTime + chaosTiming.leaseDurationMs);
        }
      }
    }
  });
});

interface LeaseVersion {
  resourceVersion: string;
  holder: string;
  acquireTime: number;
  renewTime: number;
  transitions: number;
}

function leaseVersion(lease: V1Lease): LeaseVersion {
  const time = (value: Date | string | undefined) => (value ? new Date(value).getTime() : Number.NaN);
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    holder: lease.spec?.holderIdentity ?? '',
    acquireTime: time(lease.spec?.acquireTime),
    renewTime: time(lease.spec?.renewTime),
    transitions: lease.spec?.leaseTransitions ?? 0,
  };
}

/**
 * A replica's link to the API server, with the faults of a real one: partitioned (every call
 * hangs until its caller gives up), an answer lost after the write landed, a slow network
 * (delays before the request goes out and before the answer comes back), one slow read.
 */
class ChaosStore implements LeaseStore {
  private partitioned = false;
  private loseAnswer = false;
  private slowUntil = 0;
  private slowMaxMs = 0;
  private writeHook: (() => void) | undefined;
  private readDelay: { ms: number; onMade: () => void } | undefined;

  constructor(
    private readonly real: LeaseStore,
    private readonly random: () => number,
  ) {}

  partition(): void {
    this.partitioned = true;
  }

  heal(): void {
    this.partitioned = false;
    this.loseAnswer = false;
  }

  loseNextAnswer(): void {
    this.loseAnswer = true;
  }

  slowFor(ms: number, maxDelayMs: number): void {
    this.slowUntil = Date.now() + ms;
    this.slowMaxMs = maxDelayMs;
  }

  onNextWrite(hook: () => void): void {
    this.writeHook = hook;
  }

  /** The next read goes out `ms` after it was made; `onMade` runs when it is made. */
  slowNextRead(ms: number, onMade: () => void): void {
    this.readDelay = { ms, onMade };
  }

  read(signal: AbortSignal): ReturnType<LeaseStore['read']> {
    const slow = this.readDelay;
    this.readDelay = undefined;
    if (!slow) return this.call(signal, () => this.real.read(signal));
    slow.onMade();
    return this.call(signal, async () => {
      await delay(slow.ms, undefined, { signal });
      return this.real.read(signal);
    });
  }

  write(...args: Parameters<LeaseStore['write']>): ReturnType<LeaseStore['write']> {
    const [record, annotations, rv, signal] = args;
    const hook = this.writeHook;
    this.writeHook = undefined;
    hook?.();
    if (this.loseAnswer && !this.partitioned) {
      this.partitioned = true;
      void this.real.write(record, annotations, rv, AbortSignal.timeout(5_000)).catch(() => undefined);
      return hang(signal);
    }
    return this.call(signal, () => this.real.write(record, annotations, rv, signal));
  }

  private async call<T>(signal: AbortSignal, send: () => Promise<T>): Promise<T> {
    if (this.partitioned) return hang(signal);
    await this.lag(signal);
    const result = await send();
    await this.lag(signal);
    if (this.partitioned) return hang(signal);
    return result;
  }

  private async lag(signal: AbortSignal): Promise<void> {
    if (Date.now() < this.slowUntil) await delay(this.random() * this.slowMaxMs, undefined, { signal });
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  await waitForAsync(async () => check(), timeoutMs);
}

async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await delay(50);
  }
}
