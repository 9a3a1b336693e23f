import { isAgentFault, type ProbeResult } from '../probes/probe.js';
import { engineReasons, type ConditionType } from '../../common/contract.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionRule {
  type: ConditionType;
  probe: string;
  /** Consecutive bad samples before the condition turns True. */
  failureThreshold: number;
  /** Consecutive good samples before it turns False again. */
  recoveryThreshold: number;
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
  conditionType: ConditionType;
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

  constructor(rules: ConditionRule[], now: number) {
    for (const rule of rules) {
      this.rules.set(rule.probe, rule);
      this.conditions.set(rule.type, {
        type: rule.type,
        status: 'False',
        reason: engineReasons.pending,
        message: `${rule.probe} check is enabled and has not found a problem yet`,
        lastTransitionTime: now,
      });
      this.streaks.set(rule.type, { bad: 0, good: 0, errors: 0 });
    }
  }

  /**
   * Takes over a condition already on the Node (after a restart or rolling update) so no
   * spurious transition is reported. Only the engine's own types are adopted.
   */
  adopt(existing: NodeCondition): void {
    if (!this.conditions.has(existing.type)) return;
    this.conditions.set(existing.type, { ...existing });
  }

  list(): NodeCondition[] {
    return [...this.conditions.values()].map((c) => ({ ...c }));
  }

  get(type: ConditionType): NodeCondition | undefined {
    const c = this.conditions.get(type);
    return c && { ...c };
  }

  observe(result: ProbeResult): Observation | undefined {
    const rule = this.rules.get(result.probe);
    if (!rule) return undefined;
    const condition = this.conditions.get(rule.type) as NodeCondition;
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
