import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  LeaderElector,
  LeaseConflict,
  runLeaderElection,
  type ElectionTiming,
  type LeaseRecord,
  type LeaseSnapshot,
  type LeaseStore,
} from '../../controller/leaderElection.js';

const timing: ElectionTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** One Lease object with resourceVersion checks, as the API server keeps it. */
class MemoryLease {
  record: LeaseRecord | undefined;
  version = 0;
  annotations: Record<string, string> = {};

  snapshot(): LeaseSnapshot | undefined {
    return this.record ? { ...this.record, resourceVersion: String(this.version), annotations: { ...this.annotations } } : undefined;
  }
}

/** A replica's view of the Lease, which the test can cut off (errors) or freeze (hangs). */
class ReplicaView implements LeaseStore {
  mode: 'up' | 'down' | 'hang' = 'up';
  constructor(private readonly lease: MemoryLease) {}

  async read(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    await this.gate(signal);
    return this.lease.snapshot();
  }

  async write(record: LeaseRecord, resourceVersion: string | undefined, signal: AbortSignal): Promise<LeaseSnapshot> {
    await this.gate(signal);
    const expected = this.lease.record ? String(this.lease.version) : undefined;
    if (resourceVersion !== expected) throw new LeaseConflict('the object has been modified');
    this.lease.record = record;
    this.lease.version += 1;
    return this.lease.snapshot() as LeaseSnapshot;
  }

  private gate(signal: AbortSignal): Promise<void> {
    if (this.mode === 'down') return Promise.reject(new Error('connect ECONNREFUSED'));
    // A hung request ends only when the caller gives up on it.
    if (this.mode === 'hang') return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    return Promise.resolve();
  }
}

/** Walks a fake clock in 100 ms steps; each replica attempts every retry period unless its last attempt still hangs. */
function simulate(
  seconds: number,
  replicas: Array<{ elector: LeaderElector; view: ReplicaView }>,
  clock: { now: number },
  onTick: (t: number) => void,
) {
  const nextAttempt = replicas.map(() => clock.now);
  const pending = replicas.map(() => false);
  const start = clock.now;
  return (async () => {
    while (clock.now - start <= seconds * 1000) {
      for (const [i, r] of replicas.entries()) {
        if (pending[i] || clock.now < (nextAttempt[i] ?? 0)) continue;
        pending[i] = true;
        nextAttempt[i] = clock.now + timing.retryPeriodMs;
        void r.elector.attempt(new AbortController().signal).then(() => (pending[i] = false));
      }
      await new Promise((resolve) => setImmediate(resolve));
      onTick(clock.now - start);
      clock.now += 100;
    }
  })();
}

describe('leader election on a Lease', () => {
  it('one replica leads, the other waits while the leader keeps renewing', async () => {
    const clock = { now: Date.parse('2026-03-02T08:00:00Z') };
    const lease = new MemoryLease();
    const aView = new ReplicaView(lease);
    const a = { elector: new LeaderElector(aView, 'a', timing, () => clock.now), view: aView };
    const bView = new ReplicaView(lease);
    const b = { elector: new LeaderElector(bView, 'b', timing, () => clock.now), view: bView };
    const leaders = new Set<string>();
    await simulate(60, [a, b], clock, () => {
      if (a.elector.isLeader()) leaders.add('a');
      if (b.elector.isLeader()) leaders.add('b');
    });
    expect([...leaders]).toEqual(['a']);
    expect(lease.record?.holderIdentity).toBe('a');
  });

  it.each(['down', 'hang'] as const)(
    'a leader whose API server is %s stops acting before its lease can expire, and only then the other takes over',
    async (mode) => {
      const clock = { now: Date.parse('2026-03-02T08:00:00Z') };
      const lease = new MemoryLease();
      const aView = new ReplicaView(lease);
      const bView = new ReplicaView(lease);
      const a = { elector: new LeaderElector(aView, 'a', timing, () => clock.now), view: aView };
      const b = { elector: new LeaderElector(bView, 'b', timing, () => clock.now), view: bView };
      let aStoppedAt: number | undefined;
      let bStartedAt: number | undefined;
      let overlap = false;
      await simulate(60, [a, b], clock, (t) => {
        if (t === 20_000) aView.mode = mode;
        const aLeads = a.elector.isLeader();
        const bLeads = b.elector.isLeader();
        if (aLeads && bLeads) overlap = true;
        if (t > 20_000 && !aLeads && aStoppedAt === undefined) aStoppedAt = t;
        if (bLeads && bStartedAt === undefined) bStartedAt = t;
      });
      expect(overlap).toBe(false);
      // a last renewed at 20 s (it renews every 2 s from 0): it stops at 20 s + renewDeadline.
      expect(aStoppedAt).toBe(30_000);
      // b sees that renewal at its next attempt (by 22 s) and may take over a lease duration
      // later, at an attempt of its own: never before 35 s, at the latest by 39 s.
      expect(bStartedAt).toBeGreaterThanOrEqual(35_000);
      expect(bStartedAt).toBeLessThanOrEqual(39_000);
      expect(lease.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    },
  );

  it('two replicas racing for a free Lease: exactly one wins', async () => {
    const lease = new MemoryLease();
    const now = () => Date.parse('2026-03-02T08:00:00Z');
    const a = new LeaderElector(new ReplicaView(lease), 'a', timing, now);
    const b = new LeaderElector(new ReplicaView(lease), 'b', timing, now);
    const results = await Promise.all([a.attempt(new AbortController().signal), b.attempt(new AbortController().signal)]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('a released Lease is taken at once by the next candidate', async () => {
    const clock = { now: Date.parse('2026-03-02T08:00:00Z') };
    const lease = new MemoryLease();
    const a = new LeaderElector(new ReplicaView(lease), 'a', timing, () => clock.now);
    const b = new LeaderElector(new ReplicaView(lease), 'b', timing, () => clock.now);
    const signal = new AbortController().signal;
    expect(await a.attempt(signal)).toBe(true);
    expect(await b.attempt(signal)).toBe(false);
    await a.release(signal);
    expect(a.isLeader()).toBe(false);
    clock.now += 100;
    expect(await b.attempt(signal)).toBe(true);
  });

  it('a replica restarted under the same identity does not assume it still leads', async () => {
    const clock = { now: Date.parse('2026-03-02T08:00:00Z') };
    const lease = new MemoryLease();
    const signal = new AbortController().signal;
    await new LeaderElector(new ReplicaView(lease), 'a', timing, () => clock.now).attempt(signal);
    const restarted = new LeaderElector(new ReplicaView(lease), 'a', timing, () => clock.now);
    expect(await restarted.attempt(signal)).toBe(false);
    clock.now += timing.leaseDurationMs;
    expect(await restarted.attempt(signal)).toBe(true);
  });

  it('exposes the Lease annotations, where the run-time pause switch lives', async () => {
    const lease = new MemoryLease();
    lease.annotations = { 'nodepulse.io/paused': 'true' };
    const a = new LeaderElector(new ReplicaView(lease), 'a', timing, () => 0);
    await a.attempt(new AbortController().signal);
    expect(a.annotations).toEqual({ 'nodepulse.io/paused': 'true' });
  });
});

describe('the election loop', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts the leader\'s work at the renew deadline when renewals hang, without waiting for the API server', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const lease = new MemoryLease();
    const view = new ReplicaView(lease);
    const elector = new LeaderElector(view, 'a', timing);
    const stop = new AbortController();
    let leadership: AbortSignal | undefined;
    const running = runLeaderElection(elector, timing, stop.signal, (s) => (leadership = s));
    await vi.advanceTimersByTimeAsync(100);
    expect(leadership?.aborted).toBe(false);
    const lastRenew = Date.now();
    view.mode = 'hang';
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs - 2_100);
    expect(leadership?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(2_100);
    expect(leadership?.aborted).toBe(true);
    expect(Date.now() - lastRenew).toBeLessThan(timing.leaseDurationMs);
    view.mode = 'up';
    stop.abort();
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs);
    await running;
  });
});
