import { afterEach, describe, expect, it, vi } from 'vitest';
import { keys } from '../../common/contract.js';
import {
  LeaderElector,
  LeaseConflict,
  LeaseInvalid,
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

/**
 * A replica's view of the Lease, which the test can cut off (errors), freeze (hangs until the
 * caller gives up), slow down (the server reads the Lease only later), or hold writes on
 * (they land when the test says, whatever the caller's signal did, as a server that already
 * took the request would).
 */
class ReplicaView implements LeaseStore {
  mode: 'up' | 'down' | 'hang' = 'up';
  /** Abort times of the signals of calls that were hanging. */
  readonly abortedAt: number[] = [];
  private slowReadMs = 0;
  private writesHeld: Promise<void> | undefined;

  constructor(
    private readonly lease: MemoryLease,
    private readonly now: () => number = Date.now,
  ) {}

  /** The next read reaches the server only `ms` later (on the test's clock). */
  slowNextRead(ms: number): void {
    this.slowReadMs = ms;
  }

  /** Writes from now on land only when the returned function is called. */
  holdWrites(): () => void {
    let open = () => {};
    this.writesHeld = new Promise((resolve) => (open = resolve));
    return () => {
      this.writesHeld = undefined;
      open();
    };
  }

  async read(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    await this.gate(signal);
    const due = this.now() + this.slowReadMs;
    this.slowReadMs = 0;
    while (this.now() < due) await new Promise((resolve) => setImmediate(resolve));
    return this.lease.snapshot();
  }

  async write(record: LeaseRecord, annotations: Record<string, string>, resourceVersion: string | undefined, signal: AbortSignal): Promise<LeaseSnapshot> {
    await this.gate(signal);
    await this.writesHeld;
    // The API server's metadata validation, in short.
    const refused = Object.keys(annotations).filter((key) => key.includes(' '));
    if (refused.length > 0) throw new LeaseInvalid(`metadata.annotations: Invalid value: ${refused.join(', ')}`);
    const expected = this.lease.record ? String(this.lease.version) : undefined;
    if (resourceVersion !== expected) throw new LeaseConflict('the object has been modified');
    this.lease.record = record;
    this.lease.annotations = { ...this.lease.annotations, ...annotations };
    this.lease.version += 1;
    return this.lease.snapshot() as LeaseSnapshot;
  }

  private gate(signal: AbortSignal): Promise<void> {
    if (this.mode === 'down') return Promise.reject(new Error('connect ECONNREFUSED'));
    // A hung request ends only when the caller gives up on it.
    if (this.mode === 'hang') {
      return new Promise((_, reject) =>
        signal.addEventListener(
          'abort',
          () => {
            this.abortedAt.push(this.now());
            reject(signal.reason);
          },
          { once: true },
        ),
      );
    }
    return Promise.resolve();
  }
}

type Replica = { elector: LeaderElector; view: ReplicaView };

function replica(lease: MemoryLease, identity: string, clock: { now: number }): Replica {
  const view = new ReplicaView(lease, () => clock.now);
  return { elector: new LeaderElector(view, identity, timing, () => clock.now), view };
}

/** Walks a fake clock in 100 ms steps; each replica attempts every retry period unless its last attempt still runs. */
function simulate(seconds: number, replicas: Replica[], clock: { now: number }, onTick: (t: number) => void) {
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

/** Follows a handover from a to b tick by tick: whether both ever led at once, when a stopped (after `after`), when b began. */
function handover(a: Replica, b: Replica, after: number) {
  const seen = {
    overlap: false,
    aStoppedAt: undefined as number | undefined,
    bStartedAt: undefined as number | undefined,
    tick(t: number) {
      const aLeads = a.elector.isLeader();
      const bLeads = b.elector.isLeader();
      if (aLeads && bLeads) seen.overlap = true;
      if (t > after && !aLeads && seen.aStoppedAt === undefined) seen.aStoppedAt = t;
      if (bLeads && seen.bStartedAt === undefined) seen.bStartedAt = t;
    },
  };
  return seen;
}

const t0 = Date.parse('2026-03-02T08:00:00Z');

describe('leader election on a Lease', () => {
  it('one replica leads, the other waits while the leader keeps renewing', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const a = replica(lease, 'a', clock);
    const b = replica(lease, 'b', clock);
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
      const clock = { now: t0 };
      const lease = new MemoryLease();
      const a = replica(lease, 'a', clock);
      const b = replica(lease, 'b', clock);
      const seen = handover(a, b, 20_000);
      await simulate(60, [a, b], clock, (t) => {
        if (t === 20_000) a.view.mode = mode;
        seen.tick(t);
      });
      const { overlap, aStoppedAt, bStartedAt } = seen;
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

  it('a follower whose read is slow counts the lease from when the read returned, so it never takes over while the old leader still acts', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const a = replica(lease, 'a', clock);
    const b = replica(lease, 'b', clock);
    const seen = handover(a, b, 26_000);
    await simulate(60, [a, b], clock, (t) => {
      // b's read sent at 20 s reaches the server at 27 s and shows a's renewal of 26 s ...
      if (t === 19_900) b.view.slowNextRead(7_000);
      // ... a's last one: it is cut off at 26.5 s, so it acts until 26 s + renewDeadline.
      if (t === 26_500) a.view.mode = 'down';
      seen.tick(t);
    });
    const { overlap, aStoppedAt, bStartedAt } = seen;
    expect(overlap).toBe(false);
    expect(aStoppedAt).toBe(36_000);
    // Counted from the send time (20 s) b would take over at 35 s, while a still leads.
    expect(bStartedAt).toBeGreaterThanOrEqual(27_000 + timing.leaseDurationMs);
  });

  it('two replicas racing for a free Lease: exactly one wins', async () => {
    const lease = new MemoryLease();
    const clock = { now: t0 };
    const a = replica(lease, 'a', clock).elector;
    const b = replica(lease, 'b', clock).elector;
    const results = await Promise.all([a.attempt(new AbortController().signal), b.attempt(new AbortController().signal)]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('a released Lease is taken at once by the next candidate', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const a = replica(lease, 'a', clock).elector;
    const b = replica(lease, 'b', clock).elector;
    const signal = new AbortController().signal;
    expect(await a.attempt(signal)).toBe(true);
    expect(await b.attempt(signal)).toBe(false);
    await a.release(signal);
    expect(a.isLeader()).toBe(false);
    clock.now += 100;
    expect(await b.attempt(signal)).toBe(true);
  });

  it('a replica restarted under the same identity does not assume it still leads', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const signal = new AbortController().signal;
    await replica(lease, 'a', clock).elector.attempt(signal);
    const restarted = replica(lease, 'a', clock).elector;
    expect(await restarted.attempt(signal)).toBe(false);
    clock.now += timing.leaseDurationMs;
    expect(await restarted.attempt(signal)).toBe(true);
  });

  it('a takeover given up on (shutdown) does not make the replica leader even when the write lands late, and its release hands the Lease back', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const b = replica(lease, 'b', clock);
    const open = b.view.holdWrites();
    const stop = new AbortController();
    const attempt = b.elector.attempt(stop.signal);
    await new Promise((resolve) => setImmediate(resolve));
    stop.abort();
    open();
    expect(await attempt).toBe(false);
    expect(lease.record?.holderIdentity).toBe('b');
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.leadership()).toBeUndefined();
    // The Lease names b, but b did not see itself win: it waits like anyone else ...
    expect(await b.elector.attempt(new AbortController().signal)).toBe(false);
    // ... and gives it back on the way out.
    await b.elector.release(new AbortController().signal);
    expect(lease.record?.holderIdentity).toBe('');
  });

  it('a release while a renewal is on its way leaves the Lease free and the replica not leading', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const a = replica(lease, 'a', clock);
    const signal = new AbortController().signal;
    expect(await a.elector.attempt(signal)).toBe(true);
    const open = a.view.holdWrites();
    const renewal = a.elector.attempt(signal);
    await new Promise((resolve) => setImmediate(resolve));
    const release = a.elector.release(signal);
    expect(a.elector.isLeader()).toBe(false);
    // The renewal lands first; the release meets a changed Lease, reads again and frees it.
    open();
    expect(await renewal).toBe(false);
    await release;
    expect(lease.record?.holderIdentity).toBe('');
    expect(a.elector.isLeader()).toBe(false);
  });

  it('an operator setting the pause switch while the leader renews does not cost the leader its leadership', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const a = replica(lease, 'a', clock);
    const signal = new AbortController().signal;
    expect(await a.elector.attempt(signal)).toBe(true);
    clock.now += timing.retryPeriodMs;
    const open = a.view.holdWrites();
    const renewal = a.elector.attempt(signal);
    await new Promise((resolve) => setImmediate(resolve));
    lease.annotations[keys.paused] = 'true';
    lease.version += 1;
    open();
    // That renewal met the operator's write; the leader still leads and the next one lands.
    expect(await renewal).toBe(true);
    clock.now += timing.retryPeriodMs;
    expect(await a.elector.attempt(signal)).toBe(true);
    expect(a.elector.annotations[keys.paused]).toBe('true');
  });

  it('exposes the Lease annotations, where the run-time pause switch lives', async () => {
    const lease = new MemoryLease();
    lease.annotations = { [keys.paused]: 'true' };
    const a = replica(lease, 'a', { now: t0 }).elector;
    await a.attempt(new AbortController().signal);
    expect(a.annotations).toEqual({ [keys.paused]: 'true' });
  });
});

describe('the canLead gate', () => {
  it('a replica that cannot lead does not take a free Lease', async () => {
    const lease = new MemoryLease();
    const view = new ReplicaView(lease, () => t0);
    const a = new LeaderElector(view, 'a', timing, () => t0, { canLead: () => false });
    expect(await a.attempt(new AbortController().signal)).toBe(false);
    expect(lease.record).toBeUndefined();
  });

  it('a leader that cannot lead any more releases the Lease at its next round and stops acting; it takes it again only once it can', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    let aCanLead = true;
    const a = new LeaderElector(new ReplicaView(lease, () => clock.now), 'a', timing, () => clock.now, { canLead: () => aCanLead });
    const b = replica(lease, 'b', clock).elector;
    const signal = new AbortController().signal;
    expect(await a.attempt(signal)).toBe(true);
    const leadership = a.leadership();
    aCanLead = false;
    clock.now += timing.retryPeriodMs;
    expect(await a.attempt(signal)).toBe(false);
    expect(leadership?.aborted).toBe(true);
    expect(String(leadership?.reason)).toMatch(/canLead/);
    expect(lease.record?.holderIdentity).toBe('');
    // The free Lease stays free while a cannot lead, well past any lease duration.
    clock.now += 2 * timing.leaseDurationMs;
    expect(await a.attempt(signal)).toBe(false);
    expect(lease.record?.holderIdentity).toBe('');
    // b takes it at once; once a can lead again it waits for b's lease like anyone.
    expect(await b.attempt(signal)).toBe(true);
    aCanLead = true;
    clock.now += timing.retryPeriodMs;
    expect(await a.attempt(signal)).toBe(false);
    expect(lease.record?.holderIdentity).toBe('b');
  });
});

describe('fleet memory on the Lease', () => {
  it('what the leader remembers goes out with its next renewal, keeps the others\' annotations, and the next leader reads it', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    lease.annotations = { [keys.paused]: 'false' };
    const a = replica(lease, 'a', clock).elector;
    const b = replica(lease, 'b', clock).elector;
    const signal = new AbortController().signal;
    expect(await a.attempt(signal)).toBe(true);
    expect(a.remember(keys.fleetMemory, '{"stormEndedAt":"2026-03-02T07:59:00.000Z"}')).toBe(true);
    expect(lease.annotations[keys.fleetMemory]).toBeUndefined();
    clock.now += timing.retryPeriodMs;
    expect(await a.attempt(signal)).toBe(true);
    expect(lease.annotations).toEqual({ [keys.paused]: 'false', [keys.fleetMemory]: '{"stormEndedAt":"2026-03-02T07:59:00.000Z"}' });
    // a dies; b takes over after the lease duration and finds the memory.
    clock.now += timing.leaseDurationMs;
    expect(await b.attempt(signal)).toBe(false);
    clock.now += timing.leaseDurationMs;
    expect(await b.attempt(signal)).toBe(true);
    expect(b.annotations[keys.fleetMemory]).toBe('{"stormEndedAt":"2026-03-02T07:59:00.000Z"}');
  });

  it('a leader that releases writes what it still had to remember', async () => {
    const lease = new MemoryLease();
    const a = replica(lease, 'a', { now: t0 }).elector;
    const signal = new AbortController().signal;
    await a.attempt(signal);
    a.remember(keys.fleetMemory, '{}');
    await a.release(signal);
    expect(lease.record?.holderIdentity).toBe('');
    expect(lease.annotations[keys.fleetMemory]).toBe('{}');
  });

  it('a replica that does not hold the Lease remembers nothing', async () => {
    const lease = new MemoryLease();
    const clock = { now: t0 };
    const a = replica(lease, 'a', clock).elector;
    const b = replica(lease, 'b', clock).elector;
    const signal = new AbortController().signal;
    await a.attempt(signal);
    await b.attempt(signal);
    expect(b.remember(keys.fleetMemory, '{}')).toBe(false);
    await a.attempt(signal);
    expect(lease.annotations[keys.fleetMemory]).toBeUndefined();
  });

  it('what the API server refuses is dropped with an error, and the leader keeps renewing and can still release', async () => {
    const clock = { now: t0 };
    const lease = new MemoryLease();
    const errors: string[] = [];
    const a = new LeaderElector(new ReplicaView(lease, () => clock.now), 'a', timing, () => clock.now, { onError: (err) => errors.push(String(err)) });
    const signal = new AbortController().signal;
    expect(await a.attempt(signal)).toBe(true);
    a.remember('not a key', 'x');
    clock.now += timing.retryPeriodMs;
    await a.attempt(signal);
    expect(errors).toEqual([expect.stringContaining('refused the remembered annotation(s) not a key, so they are dropped')]);
    const version = lease.version;
    clock.now += timing.retryPeriodMs;
    expect(await a.attempt(signal)).toBe(true);
    expect(lease.version).toBe(version + 1);
    a.remember('not a key either', 'x');
    await a.release(signal);
    expect(lease.record?.holderIdentity).toBe('');
    expect(lease.annotations).toEqual({});
  });
});

describe('the election loop', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts the leader\'s work at the renew deadline when renewals hang, without waiting for the API server', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const view = new ReplicaView(new MemoryLease());
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

  it('cancels a renewal stuck on a hung API server at the renew deadline, not a renew deadline after the renewal began', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const view = new ReplicaView(new MemoryLease());
    const elector = new LeaderElector(view, 'a', timing);
    const stop = new AbortController();
    const running = runLeaderElection(elector, timing, stop.signal, () => {});
    await vi.advanceTimersByTimeAsync(100);
    const deadline = elector.leadershipExpiresAt();
    view.mode = 'hang';
    // The next renewal starts a retry period later and hangs.
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs + timing.retryPeriodMs);
    expect(view.abortedAt[0]).toBe(deadline);
    stop.abort();
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs);
    await running;
  });

  it('a leader whose canLead turns false releases the Lease within a retry period, stops acting, and another replica takes over at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const lease = new MemoryLease();
    let aCanLead = true;
    const a = new LeaderElector(new ReplicaView(lease), 'a', timing, Date.now, { canLead: () => aCanLead });
    const b = new LeaderElector(new ReplicaView(lease), 'b', timing);
    const stop = new AbortController();
    const aTerms: AbortSignal[] = [];
    let bStartedAt: number | undefined;
    const runA = runLeaderElection(a, timing, stop.signal, (s) => aTerms.push(s));
    await vi.advanceTimersByTimeAsync(100);
    const runB = runLeaderElection(b, timing, stop.signal, () => (bStartedAt ??= Date.now()));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(aTerms).toHaveLength(1);
    const unfitAt = Date.now();
    aCanLead = false;
    await vi.advanceTimersByTimeAsync(timing.retryPeriodMs);
    expect(aTerms[0]?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(timing.retryPeriodMs);
    expect(bStartedAt).toBeDefined();
    expect((bStartedAt ?? 0) - unfitAt).toBeLessThanOrEqual(2 * timing.retryPeriodMs);
    // While a cannot lead it never takes the Lease back.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(aTerms).toHaveLength(1);
    stop.abort();
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs);
    await Promise.all([runA, runB]);
  });

  it('release() while the election runs ends leadership at once; the replica leads again only when canLead allows', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const lease = new MemoryLease();
    let canLead = true;
    const a = new LeaderElector(new ReplicaView(lease), 'a', timing, Date.now, { canLead: () => canLead });
    const stop = new AbortController();
    const terms: AbortSignal[] = [];
    const running = runLeaderElection(a, timing, stop.signal, (s) => terms.push(s));
    await vi.advanceTimersByTimeAsync(100);
    expect(terms).toHaveLength(1);
    canLead = false;
    const released = a.release(new AbortController().signal);
    expect(terms[0]?.aborted).toBe(true);
    expect(a.isLeader()).toBe(false);
    await released;
    expect(lease.record?.holderIdentity).toBe('');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(terms).toHaveLength(1);
    canLead = true;
    await vi.advanceTimersByTimeAsync(timing.retryPeriodMs);
    expect(terms).toHaveLength(2);
    expect(terms[1]?.aborted).toBe(false);
    stop.abort();
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs);
    await running;
  });
});
