/**
 * Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it,
 * small enough to read in one sitting:
 * - a candidate takes the Lease when it is free, released, or not renewed for its duration as
 *   measured on *our* clock from when we first saw its current version (never from the
 *   holder's timestamps, so clock skew between machines does not matter);
 * - every write carries the resourceVersion it read, so two candidates never both win;
 * - the leader renews every retry period, and stops acting once `renewDeadline` has passed
 *   since the send time of its last successful renewal. Others cannot take over before
 *   `leaseDuration` after they saw that renewal, which came after we sent it, and
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
  read(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  /** Creates (resourceVersion undefined) or replaces; rejects with LeaseConflict if someone wrote first. */
  write(record: LeaseRecord, resourceVersion: string | undefined, signal: AbortSignal): Promise<LeaseSnapshot>;
}

export class LeaseConflict extends Error {
  override name = 'LeaseConflict';
}

export interface ElectionTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ElectionEvents {
  onError?(err: unknown): void;
  onNewLeader?(identity: string): void;
}

export class LeaderElector {
  private lastRenewSentAt: number | undefined;
  private holding = false;
  private observed: { version: string; at: number; durationMs: number } | undefined;
  private knownLeader = '';
  /** Annotations of the Lease as last read (the run-time pause switch lives there). */
  annotations: Record<string, string> = {};

  constructor(
    private readonly store: LeaseStore,
    readonly identity: string,
    private readonly timing: ElectionTiming,
    private readonly now: () => number = Date.now,
    private readonly events: ElectionEvents = {},
  ) {
    if (!(timing.retryPeriodMs < timing.renewDeadlineMs && timing.renewDeadlineMs < timing.leaseDurationMs)) {
      throw new Error('leader election needs retryPeriod < renewDeadline < leaseDuration');
    }
  }

  /** Whether this replica may act right now. Judged by the clock, not by the last attempt. */
  isLeader(): boolean {
    return this.holding && this.lastRenewSentAt !== undefined && this.now() - this.lastRenewSentAt < this.timing.renewDeadlineMs;
  }

  /** When leadership lapses unless renewed (epoch ms), or undefined when not leading. */
  leadershipExpiresAt(): number | undefined {
    return this.isLeader() && this.lastRenewSentAt !== undefined ? this.lastRenewSentAt + this.timing.renewDeadlineMs : undefined;
  }

  /** One acquire-or-renew round. Resolves with isLeader() afterwards; never rejects. */
  async attempt(signal: AbortSignal): Promise<boolean> {
    const sentAt = this.now();
    try {
      const current = await this.store.read(signal);
      if (current) this.annotations = current.annotations;
      const next = this.nextRecord(current, sentAt);
      if (!next) {
        this.holding = false;
        return false;
      }
      const written = await this.store.write(next, current?.resourceVersion, signal);
      this.annotations = written.annotations;
      this.holding = true;
      this.lastRenewSentAt = sentAt;
      this.noteLeader(this.identity);
    } catch (err) {
      // A lost race or an unreachable API server: leadership lapses by the clock alone.
      if (err instanceof LeaseConflict) this.holding = false;
      else this.events.onError?.(err);
    }
    return this.isLeader();
  }

  /** Gives the Lease up (on shutdown) so another replica can take over at once. */
  async release(signal: AbortSignal): Promise<void> {
    if (!this.holding) return;
    this.holding = false;
    try {
      const current = await this.store.read(signal);
      if (!current || current.holderIdentity !== this.identity) return;
      const now = new Date(this.now());
      await this.store.write(
        {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: current.acquireTime ?? now,
          renewTime: now,
          leaseTransitions: current.leaseTransitions ?? 0,
        },
        current.resourceVersion,
        signal,
      );
    } catch (err) {
      this.events.onError?.(err);
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
    if (holder !== '') {
      this.noteLeader(holder);
      // Each new version of the record restarts the holder's duration, on our clock.
      if (this.observed?.version !== current.resourceVersion) {
        const duration = current.leaseDurationSeconds && current.leaseDurationSeconds > 0 ? current.leaseDurationSeconds : ownDuration;
        this.observed = { version: current.resourceVersion, at: now, durationMs: duration * 1000 };
      }
      // A record naming us that we do not hold (we restarted) is treated like anyone else's.
      if (now < this.observed.at + this.observed.durationMs) return undefined;
    }
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
    this.events.onNewLeader?.(identity);
  }
}

/**
 * Runs the election until `signal` aborts: calls `lead` with a signal that aborts the moment
 * leadership lapses (a watchdog fires at the renew deadline, whatever the API server does),
 * and releases the Lease on the way out.
 */
export async function runLeaderElection(
  elector: LeaderElector,
  timing: ElectionTiming,
  signal: AbortSignal,
  lead: (leadership: AbortSignal) => void,
  now: () => number = Date.now,
): Promise<void> {
  let leadership: AbortController | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  const lapse = (reason: string) => {
    leadership?.abort(new Error(reason));
    leadership = undefined;
  };
  const arm = () => {
    clearTimeout(watchdog);
    const expires = elector.leadershipExpiresAt();
    if (expires === undefined) return;
    watchdog = setTimeout(() => {
      if (!elector.isLeader()) lapse('leader lease not renewed within the renew deadline');
      else arm();
    }, Math.max(0, expires - now()));
  };
  try {
    while (!signal.aborted) {
      await elector.attempt(AbortSignal.any([signal, AbortSignal.timeout(timing.renewDeadlineMs)]));
      if (elector.isLeader()) {
        arm();
        if (!leadership) {
          leadership = new AbortController();
          lead(leadership.signal);
        }
      } else if (leadership) {
        lapse('leader lease lost');
      }
      await sleep(timing.retryPeriodMs, signal);
    }
  } finally {
    clearTimeout(watchdog);
    lapse('shutting down');
    await elector.release(AbortSignal.timeout(timing.retryPeriodMs));
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
