import { evaluateBreaker } from './circuitBreaker.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import type { FleetSummary } from './fleet.js';
import type { NodeFacts } from './nodeHealth.js';
import { isLeaving, isOptedOut } from './skipRules.js';

/**
 * Quarantine: while a configured agent condition is True, keep our NoSchedule taint on the
 * node; remove it when the condition clears (or the feature is switched off, so no taint of
 * ours is ever left behind). Adding is held back by the same circuit breaker as remediation:
 * a cluster-wide DNS outage must not cordon the fleet.
 */
export type QuarantineDecision =
  | { kind: 'none' }
  | { kind: 'add'; why: string }
  | { kind: 'remove'; why: string }
  | { kind: 'hold'; why: string };

export function decideQuarantine(node: NodeFacts, fleet: FleetSummary, config: ControllerConfig): QuarantineDecision {
  const q = config.quarantine;
  const tainted = node.taints.some((t) => t.key === q.taintKey);
  const active = q.enabled
    ? q.conditions.filter((type) => node.conditions.some((c) => c.type === type && c.status === 'True'))
    : [];
  if (tainted === active.length > 0) return { kind: 'none' };
  if (config.paused || fleet.paused) return { kind: 'hold', why: 'controller paused' };
  if (tainted) {
    return { kind: 'remove', why: q.enabled ? `${q.conditions.join(', ')} no longer True` : 'quarantine is disabled' };
  }
  if (isLeaving(node)) return { kind: 'hold', why: 'node is leaving the cluster' };
  if (isOptedOut(node, config)) return { kind: 'hold', why: `opted out by ${config.optOut.key}=${config.optOut.value}` };
  const breaker = evaluateBreaker(fleet.nodes, fleet.quarantineWanted, config.safety.circuitBreaker);
  if (breaker.open) return { kind: 'hold', why: `circuit breaker: ${breaker.why}` };
  return { kind: 'add', why: `${active.join(', ')} True` };
}
