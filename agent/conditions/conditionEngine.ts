import { isAgentFault, type ProbeResult } from '../probes/probe.js';
import { clearedReasons, engineReasons } from '../../common/contract.js';

/** A probe's type (common/contract.ts) or a monitor's, which a rule file may name. */
export type ConditionType = string;

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionRule {
  type: ConditionType;
  probe: string;
  /** Consecutive bad samples before the condition turns True. */
  failureThreshold: number;
  /** Consecutive good samples before it turns False again. */
  recoveryThreshold: number;
  /** The healthy reason and message before any result (a rule file's conditions[]); else NoProblemYet. */
  initial?: { reason: string; message: string };
  /**
   * A problem of one boot (read from its kernel log): its message carries the boot ID, and a
   * condition of an earlier boot clears with ClearedByReboot (clearEarlierBoots).
   */
  bootScoped?: boolean;
  /** True clears with ClearedAfterQuietPeriod when no problem result came for this long (expire). */
  clearAfterMs?: number;
}

/** What the engine knows of the boot it runs in, for boot-scoped conditions. */
export interface BootFacts {
  /** /proc/sys/kernel/random/boot_id. */
  bootId: string;
  /** Epoch ms the boot started (now - /proc/uptime). */
  startedAt: number;
}

export interface NodeCondition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  /** Epoch ms of the last status change. */
  lastTransitionTime: number;
}

/** A transition (condition changed) or a temporary problem (a bad sample below the threshold). */
export interface ProblemEvent {
  kind: 'transition' | 'temporary';
  severity: 'Normal' | 'Warning';
  /** Absent for a one-off problem of a monitor (NPD's temporary rule): an Event with no condition. */
  conditionType?: ConditionType;
  reason: string;
  message: string;
  at: number;
}

export interface Observation {
  condition: NodeCondition;
  /** True when status or reason changed: the publisher writes only then (and on heartbeat). */
  changed: boolean;
  events: ProblemEvent[];
}

interface Streaks {
  bad: number;
  good: number;
  errors: number;
}

/**
 * Turns per-sample verdicts into NPD-style problems with hysteresis: a condition turns True
 * after `failureThreshold` bad samples in a row and False after `recoveryThreshold` good
 * ones, so one bad sample never flaps it. Knows nothing of clients or clocks beyond `now`.
 */
export class ConditionEngine {
  private readonly rules = new Map<string, ConditionRule>();
  private readonly conditions = new Map<ConditionType, NodeCondition>();
  private readonly streaks = new Map<ConditionType, Streaks>();
  /** Epoch ms of the last problem result per condition with clearAfterMs. */
  private readonly lastProblemAt = new Map<ConditionType, number>();
  /**
   * What each condition adopted from the Node already holds: the last record's sequence number
   * in its boot tag (exact), else its lastTransitionTime (NPD's, or one never raised by a record).
   */
  private readonly adoptedUpTo = new Map<ConditionType, { seq: number } | { at: number }>();
  /** When the previous agent last wrote the Node (adoption); replayed one-off problems before it were reported by it. */
  private previousAgentWroteAt = -Infinity;

  constructor(
    rules: ConditionRule[],
    now: number,
    private readonly boot?: BootFacts,
  ) {
    for (const rule of rules) {
      if (this.conditions.has(rule.type)) throw new Error(`condition ${rule.type} is owned by two sources (${this.ruleOf(rule.type)?.probe} and ${rule.probe})`);
      this.rules.set(rule.probe, rule);
      this.conditions.set(rule.type, {
        type: rule.type,
        status: 'False',
        reason: rule.initial?.reason ?? engineReasons.pending,
        message: rule.initial?.message ?? `${rule.probe} check is enabled and has not found a problem yet`,
        lastTransitionTime: now,
      });
      this.streaks.set(rule.type, { bad: 0, good: 0, errors: 0 });
    }
  }

  private ruleOf(type: ConditionType): ConditionRule | undefined {
    for (const rule of this.rules.values()) if (rule.type === type) return rule;
    return undefined;
  }

  /**
   * A line replayed from the log's lookback that the state adopted from the Node already holds:
   * by sequence number when its boot tag says, else not newer than its transition (the API
   * keeps whole seconds: the second of the transition counts).
   */
  private alreadyHeld(type: ConditionType, result: ProbeResult): boolean {
    const upTo = this.adoptedUpTo.get(type);
    if (!upTo) return false;
    if ('seq' in upTo && result.seq !== undefined) return result.seq <= upTo.seq;
    return 'at' in upTo && result.at < Math.floor(upTo.at / 1000) * 1000 + 1000;
  }

  /** The condition types this engine owns (the probes' and the monitors' that run). */
  types(): ConditionType[] {
    return [...this.conditions.keys()];
  }

  /**
   * Takes over a condition already on the Node (after a restart or rolling update) so no
   * spurious transition is reported. Only the engine's own types are adopted.
   */
  adopt(existing: NodeCondition, lastHeartbeatTime?: number): void {
    if (!this.conditions.has(existing.type)) return;
    this.conditions.set(existing.type, { ...existing });
    const tag = lastBootTag(existing.message);
    const sameBoot = tag !== undefined && tag.bootId === this.boot?.bootId && tag.seq !== undefined;
    this.adoptedUpTo.set(existing.type, sameBoot ? { seq: tag.seq as number } : { at: existing.lastTransitionTime });
    if (existing.status === 'True') this.lastProblemAt.set(existing.type, existing.lastTransitionTime);
    if (lastHeartbeatTime !== undefined && lastHeartbeatTime > this.previousAgentWroteAt) this.previousAgentWroteAt = lastHeartbeatTime;
  }

  /**
   * Boot-scoped conditions still True from an earlier boot clear (after adoption): their
   * message names another boot ID, or, written by NPD (no boot ID), they turned True before
   * this boot started.
   */
  clearEarlierBoots(now: number): Observation[] {
    const boot = this.boot;
    if (!boot) return [];
    const cleared: Observation[] = [];
    for (const rule of this.rules.values()) {
      const condition = this.conditions.get(rule.type) as NodeCondition;
      if (!rule.bootScoped || condition.status !== 'True') continue;
      const tagged = lastBootTag(condition.message)?.bootId;
      const earlier = tagged !== undefined ? tagged !== boot.bootId : condition.lastTransitionTime < boot.startedAt;
      if (!earlier) continue;
      const message = `cleared: the problem was logged in an earlier boot${tagged ? ` (${tagged})` : ''}, this is boot ${boot.bootId}; it was: ${condition.message.replace(bootTags, '')}`;
      cleared.push(this.clear(rule, condition, clearedReasons.reboot, message, now));
    }
    return cleared;
  }

  /** Conditions with clearAfterMs that saw no problem result for that long clear. */
  expire(now: number): Observation[] {
    const cleared: Observation[] = [];
    for (const rule of this.rules.values()) {
      if (rule.clearAfterMs === undefined) continue;
      const condition = this.conditions.get(rule.type) as NodeCondition;
      const last = this.lastProblemAt.get(rule.type);
      if (condition.status !== 'True' || last === undefined || now - last < rule.clearAfterMs) continue;
      const message = `cleared: no recurrence for ${Math.round(rule.clearAfterMs / 1000)}s; it was: ${condition.message}`;
      cleared.push(this.clear(rule, condition, clearedReasons.quietPeriod, message, now));
    }
    return cleared;
  }

  private clear(rule: ConditionRule, condition: NodeCondition, reason: string, message: string, now: number): Observation {
    condition.status = 'False';
    condition.reason = reason;
    condition.message = message;
    condition.lastTransitionTime = now;
    this.lastProblemAt.delete(rule.type);
    const streak = this.streaks.get(rule.type) as Streaks;
    streak.bad = 0;
    streak.good = 0;
    streak.errors = 0;
    const event: ProblemEvent = { kind: 'transition', severity: 'Normal', conditionType: rule.type, reason, message, at: now };
    return { condition: { ...condition }, changed: true, events: [event] };
  }

  /**
   * A one-off problem (NPD's temporary rule): an Event, no condition. One replayed from the
   * log's lookback is dropped when the previous agent wrote the Node after it was logged
   * (it reported it then).
   */
  oneOff(result: ProbeResult): ProblemEvent | undefined {
    if (result.replayed && result.at <= this.previousAgentWroteAt) return undefined;
    return { kind: 'temporary', severity: 'Warning', reason: result.reason, message: result.message, at: result.at };
  }

  list(): NodeCondition[] {
    return [...this.conditions.values()].map((c) => ({ ...c }));
  }

  get(type: ConditionType): NodeCondition | undefined {
    const c = this.conditions.get(type);
    return c && { ...c };
  }

  observe(input: ProbeResult): Observation | undefined {
    const rule = this.rules.get(input.probe);
    if (!rule) return undefined;
    const condition = this.conditions.get(rule.type) as NodeCondition;
    if (input.replayed && this.alreadyHeld(rule.type, input)) return undefined;
    const tag = this.boot && (input.seq !== undefined ? `[boot ${this.boot.bootId} seq ${input.seq}]` : `[boot ${this.boot.bootId}]`);
    const result = rule.bootScoped && tag && !input.healthy && !isAgentFault(input) ? { ...input, message: `${input.message} ${tag}` } : input;
    if (!result.healthy && !isAgentFault(result) && rule.clearAfterMs !== undefined) this.lastProblemAt.set(rule.type, result.at);
    const streak = this.streaks.get(rule.type) as Streaks;
    const before = { status: condition.status, reason: condition.reason };
    const events: ProblemEvent[] = [];
    const event = (kind: ProblemEvent['kind'], severity: ProblemEvent['severity']) =>
      events.push({ kind, severity, conditionType: rule.type, reason: result.reason, message: result.message, at: result.at });
    const transition = (status: ConditionStatus) => {
      condition.status = status;
      condition.lastTransitionTime = result.at;
    };

    if (isAgentFault(result)) {
      // The agent cannot see this node (probe broken, file unreadable): Unknown, never True.
      streak.errors += 1;
      if (streak.errors === 1) event('temporary', 'Warning');
      if (streak.errors >= rule.failureThreshold && condition.status !== 'Unknown') {
        transition('Unknown');
        condition.reason = result.reason;
        condition.message = result.message;
        event('transition', 'Warning');
      }
    } else if (!result.healthy) {
      streak.errors = 0;
      streak.good = 0;
      streak.bad += 1;
      if (condition.status === 'True') {
        condition.reason = result.reason;
        condition.message = result.message;
      } else if (streak.bad >= rule.failureThreshold) {
        transition('True');
        condition.reason = result.reason;
        condition.message = result.message;
        event('transition', 'Warning');
      } else if (streak.bad === 1) {
        event('temporary', 'Warning');
      }
    } else {
      streak.errors = 0;
      streak.bad = 0;
      streak.good += 1;
      // Unknown (probe broken) clears on the first good sample: there is no problem to outlast.
      const recovered = condition.status === 'Unknown' || streak.good >= rule.recoveryThreshold;
      if (condition.status !== 'False' && recovered) {
        transition('False');
        condition.reason = result.reason;
        condition.message = result.message;
        event('transition', 'Normal');
      } else if (condition.status === 'False') {
        condition.reason = result.reason;
        condition.message = result.message;
      }
    }
    const changed = condition.status !== before.status || condition.reason !== before.reason;
    return { condition: { ...condition }, changed, events };
  }
}

/** The boot (and the record) a boot-scoped condition's message names; a clearing message holds the old one. */
const bootTags = / \[boot ([0-9a-f-]+)(?: seq (\d+))?\]/g;

function lastBootTag(message: string): { bootId: string; seq?: number } | undefined {
  const last = [...message.matchAll(bootTags)].at(-1);
  if (!last) return undefined;
  return { bootId: last[1] as string, ...(last[2] !== undefined ? { seq: Number(last[2]) } : {}) };
}
