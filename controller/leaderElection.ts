import { sleepUnlessAborted } from '../common/sleep.js';

/**
 * Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it
 * (kubernetes/client-go tools/leaderelection/leaderelection.go), small enough to read in one
 * sitting:
 * - a candidate takes the Lease when it is free, released, or not renewed for its duration as
 *   measured on *our* clock from when we first saw its current version (never from the
 *   holder's timestamps, so clock skew between machines does not matter). That moment is
 *   stamped when the read has *returned*, as client-go's setObservedRecord does
 *   (`le.observedTime = le.clock.Now()`, called after `Lock.Get`): the version may have been
 *   written at any time while our request was on its way, so the send time would start the
 *   holder's duration before the holder's renewal happened;
 * - every write carries the resourceVersion it read, so two candidates never both win;
 * - the leader renews every retry period and stops acting once `renewDeadline` has passed
 *   since the start of its last successful renewal. Others cannot take over before
 *   `leaseDuration` after they saw that renewal, which came after it started, and
 *   renewDeadline < leaseDuration: the old leader has stopped before anyone else starts.
 */
export interface LeaseRecord {
  /** '' when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: Date;
  renewTime: Date;
  leaseTransitions: number;
}

export interface LeaseSnapshot extends Partial<LeaseRecord> {
  resourceVersion: string;
  annotations: Record<string, string>;
}

/** Where the Lease lives; a Kubernetes one in production, an in-memory one in unit tests. */
export interface LeaseStore {
  /** Rejects once `signal` aborts, whatever the call was doing. */
  read(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  /**
   * Creates (resourceVersion undefined) or replaces the Lease, setting `annotations` and
   * keeping every other annotation; rejects with LeaseConflict if someone wrote first, and
   * once `signal` aborts.
   */
  write(record: LeaseRecord, annotations: Record<string, string>, resourceVersion: string | undefined, signal: AbortSignal): Promise<LeaseSnapshot>;
}

export class LeaseConflict extends Error {
  override name = 'LeaseConflict';
}

/** The API server refused the Lease as written (HTTP 422), e.g. an annotation it cannot take. */
export class LeaseInvalid extends Error {
  override name = 'LeaseInvalid';
}

export interface ElectionTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ElectorOptions {
  onError?(err: unknown): void;
  onNewLeader?(identity: string): void;
  /**
   * Whether this replica is fit to lead (e.g. its caches are current). While it returns
   * false the replica does not acquire the Lease, and a leader releases it at its next round.
   */
  canLead?(): boolean;
}

export class LeaderElector {
  private holding = false;
  /** Start of the last successful renewal (or acquisition); leadership is judged from it. */
  private lastRenewStartedAt: number | undefined;
  /** Bumped whenever we stop holding or give the Lease up, so a round that began before cannot make us leader. */
  private generation = 0;
  private leadershipTerm: AbortController | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private observed: { version: string; at: number; durationMs: number } | undefined;
  private knownLeader = '';
  private readonly pending = new Map<string, string>();
  /** Annotations of the Lease as last read or written (the pause switch and the fleet memory live there). */
  annotations: Record<string, string> = {};

  constructor(
    private readonly store: LeaseStore,
    readonly identity: string,
    private readonly timing: ElectionTiming,
    private readonly now: () => number = Date.now,
    private readonly options: ElectorOptions = {},
  ) {
    if (!(timing.retryPeriodMs < timing.renewDeadlineMs && timing.renewDeadlineMs < timing.leaseDurationMs)) {
      throw new Error('leader election needs retryPeriod < renewDeadline < leaseDuration');
    }
  }

  /** Whether this replica may act right now. Judged by the clock, not by the last attempt. */
  isLeader(): boolean {
    return this.holding && this.lastRenewStartedAt !== undefined && this.now() - this.lastRenewStartedAt < this.timing.renewDeadlineMs;
  }

  /** When leadership lapses unless renewed (epoch ms), or undefined when not leading. */
  leadershipExpiresAt(): number | undefined {
    return this.isLeader() && this.lastRenewStartedAt !== undefined ? this.lastRenewStartedAt + this.timing.renewDeadlineMs : undefined;
  }

  /**
   * While leading: a signal that aborts the moment this leadership ends (renew deadline
   * passed, release, canLead false, Lease lost), whatever the API server does. A replica that
   * leads again later gets a new one.
   */
  leadership(): AbortSignal | undefined {
    return this.isLeader() ? this.leadershipTerm?.signal : undefined;
  }

  /**
   * Sets annotation `key` to `value` (keep it small) on the Lease with the leader's next
   * successful write (renewal or release), keeping everyone else's annotations. Returns false,
   * and keeps nothing, when this replica does not hold the Lease. Others read it from
   * `annotations`. What the API server refuses is dropped (onError says so), never retried:
   * it would fail every renewal after it.
   */
  remember(key: string, value: string): boolean {
    if (!this.holding) return false;
    this.pending.set(key, value);
    return true;
  }

  /** One acquire-or-renew round (client-go's tryAcquireOrRenew). Resolves with isLeader() afterwards; never rejects. */
  async attempt(signal: AbortSignal): Promise<boolean> {
    const generation = this.generation;
    const startedAt = this.now();
    const writing = new Map(this.pending);
    try {
      const current = await this.store.read(signal);
      this.observe(current);
      if (!(this.options.canLead?.() ?? true)) {
        await this.handBack(current, this.stepDown('this replica cannot lead now (canLead is false)'), signal);
        return false;
      }
      const next = this.nextRecord(current, startedAt);
      if (!next) {
        if (this.holding) this.stopHolding(`the leader lease is held by ${current?.holderIdentity ?? 'another replica'}`);
        return false;
      }
      const written = await this.store.write(next, Object.fromEntries(writing), current?.resourceVersion, signal);
      // A call we gave up on, or one overtaken by a release, never makes us leader: had the
      // write landed, the Lease names us, and the next round treats that like anyone's record.
      if (signal.aborted || generation !== this.generation) return this.isLeader();
      this.observe(written);
      this.settle(writing);
      this.renewed(startedAt);
    } catch (err) {
      // A conflict only says someone wrote in between (a candidate, or an operator setting the
      // pause switch): a leader keeps its clock and finds out at its next read, as client-go's
      // renew loop does. A taker would have waited out our lease, so our deadline is long past.
      if (err instanceof LeaseInvalid && writing.size > 0) this.forget(writing, err);
      else if (!(err instanceof LeaseConflict)) this.options.onError?.(err);
    }
    return this.isLeader();
  }

  /**
   * Gives the Lease up so another replica can take over at once: callable any time, also
   * while the election keeps running (it re-acquires only while canLead() allows). Leadership
   * ends before the release is sent.
   */
  async release(signal: AbortSignal): Promise<void> {
    const memory = this.stepDown('released the leader lease');
    try {
      const current = await this.store.read(signal);
      this.observe(current);
      await this.handBack(current, memory, signal);
    } catch (err) {
      this.options.onError?.(err);
    }
  }

  /** Stops leading at once and makes any round under way void; returns what remained to be remembered. */
  private stepDown(reason: string): Record<string, string> {
    const memory = Object.fromEntries(this.pending);
    this.stopHolding(reason);
    return memory;
  }

  /**
   * Writes the Lease free (client-go's tryRelease: holder '', duration 1 s) if it names us,
   * also when we never knew we held it (an abandoned write that landed: identities are per
   * process), with what the leader still had to remember.
   */
  private async handBack(current: LeaseSnapshot | undefined, memory: Record<string, string>, signal: AbortSignal): Promise<void> {
    // client-go retries a release on conflict: a renewal still in flight may have moved the
    // resourceVersion. Three rounds are plenty; a Lease that keeps changing is someone else's.
    for (let round = 0; round < 3 && current?.holderIdentity === this.identity; round += 1) {
      const now = new Date(this.now());
      const record = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: current.acquireTime ?? now, renewTime: now, leaseTransitions: current.leaseTransitions ?? 0 };
      try {
        this.observe(await this.store.write(record, memory, current.resourceVersion, signal));
        return;
      } catch (err) {
        if (err instanceof LeaseInvalid && Object.keys(memory).length > 0) {
          this.forget(new Map(Object.entries(memory)), err);
          memory = {};
          continue;
        }
        if (!(err instanceof LeaseConflict)) throw err;
      }
      current = await this.store.read(signal);
      this.observe(current);
    }
  }

  /** What went out is no longer pending, unless remember() has changed it since. */
  private settle(written: Map<string, string>): void {
    for (const [key, value] of written) if (this.pending.get(key) === value) this.pending.delete(key);
  }

  private forget(written: Map<string, string>, err: LeaseInvalid): void {
    this.settle(written);
    this.options.onError?.(new Error(`the API server refused the remembered annotation(s) ${[...written.keys()].join(', ')}, so they are dropped: ${err.message}`));
  }

  private renewed(startedAt: number): void {
    this.holding = true;
    this.lastRenewStartedAt = startedAt;
    if (!this.leadershipTerm) this.leadershipTerm = new AbortController();
    this.armWatchdog();
    this.noteLeader(this.identity);
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    const expires = this.leadershipExpiresAt();
    if (expires === undefined) return this.endLeadership('leader lease not renewed within the renew deadline');
    this.watchdog = setTimeout(() => this.armWatchdog(), Math.max(0, expires - this.now()));
    this.watchdog.unref();
  }

  private stopHolding(reason: string): void {
    this.holding = false;
    // Also when not holding: a takeover under way when release() is called must not land as leadership.
    this.generation += 1;
    this.pending.clear();
    this.endLeadership(reason);
  }

  private endLeadership(reason: string): void {
    clearTimeout(this.watchdog);
    this.leadershipTerm?.abort(new Error(reason));
    this.leadershipTerm = undefined;
  }

  private observe(snapshot: LeaseSnapshot | undefined): void {
    this.annotations = snapshot?.annotations ?? {};
    if (!snapshot) return;
    const holder = snapshot.holderIdentity ?? '';
    if (holder !== '') this.noteLeader(holder);
    // Each new version of the record restarts the holder's duration, on our clock, from now:
    // after the read (or write) that showed it returned.
    if (this.observed?.version !== snapshot.resourceVersion) {
      const seconds = snapshot.leaseDurationSeconds && snapshot.leaseDurationSeconds > 0 ? snapshot.leaseDurationSeconds : Math.ceil(this.timing.leaseDurationMs / 1000);
      this.observed = { version: snapshot.resourceVersion, at: this.now(), durationMs: seconds * 1000 };
    }
  }

  private nextRecord(current: LeaseSnapshot | undefined, now: number): LeaseRecord | undefined {
    const ownDuration = Math.ceil(this.timing.leaseDurationMs / 1000);
    const nowDate = new Date(now);
    if (!current) {
      return { holderIdentity: this.identity, leaseDurationSeconds: ownDuration, acquireTime: nowDate, renewTime: nowDate, leaseTransitions: 0 };
    }
    const holder = current.holderIdentity ?? '';
    if (holder === this.identity && this.holding) {
      return {
        holderIdentity: this.identity,
        leaseDurationSeconds: ownDuration,
        acquireTime: current.acquireTime ?? nowDate,
        renewTime: nowDate,
        leaseTransitions: current.leaseTransitions ?? 0,
      };
    }
    // A record naming us that we do not hold (an abandoned write landed) is treated like anyone else's.
    if (holder !== '' && this.observed && now < this.observed.at + this.observed.durationMs) return undefined;
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: ownDuration,
      acquireTime: nowDate,
      renewTime: nowDate,
      leaseTransitions: (current.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1),
    };
  }

  private noteLeader(identity: string): void {
    if (identity === this.knownLeader) return;
    this.knownLeader = identity;
    this.options.onNewLeader?.(identity);
  }
}

/**
 * Runs the election until `signal` aborts: calls `lead` with elector.leadership() each time
 * this replica starts leading, and releases the Lease on the way out. `timing` is the
 * elector's.
 *
 * Renewal as client-go's renew() does it: `wait.PollUntilContextTimeout(ctx, RetryPeriod,
 * RenewDeadline, ..., tryAcquireOrRenew)` makes the renew deadline the timeout of the
 * renewal calls themselves, so a hung renewal is cancelled when leadership ends instead of
 * landing later. client-go counts that deadline from the start of the renewal round, a retry
 * period after the last success returned; we count it from the start of the last successful
 * renewal, which is earlier, so our leader never acts longer than client-go's would.
 */
export async function runLeaderElection(
  elector: LeaderElector,
  timing: ElectionTiming,
  signal: AbortSignal,
  lead: (leadership: AbortSignal) => void,
  now: () => number = Date.now,
): Promise<void> {
  let handedOut: AbortSignal | undefined;
  try {
    while (!signal.aborted) {
      const expires = elector.leadershipExpiresAt();
      const budget = expires === undefined ? timing.renewDeadlineMs : Math.max(0, expires - now());
      await withTimeout(budget, signal, (round) => elector.attempt(round));
      const leadership = elector.leadership();
      if (leadership && leadership !== handedOut) {
        handedOut = leadership;
        lead(leadership);
      }
      await sleepUnlessAborted(timing.retryPeriodMs, signal);
    }
  } finally {
    // client-go's release() gives itself RenewDeadline too.
    await withTimeout(timing.renewDeadlineMs, undefined, (round) => elector.release(round));
  }
}

/** Runs `call` with a signal that also aborts after `ms` (a plain timer, which tests can fake). */
async function withTimeout<T>(ms: number, parent: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new DOMException(`gave up after ${ms} ms`, 'TimeoutError')), ms);
  try {
    return await call(parent ? AbortSignal.any([parent, timeout.signal]) : timeout.signal);
  } finally {
    clearTimeout(timer);
  }
}
