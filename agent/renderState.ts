import type { NodeCondition, ProblemEvent } from './conditions/conditionEngine.js';
import type { ProbeResult } from './probes/probe.js';

/**
 * The agent's state as people and tools read it (/conditions, /stream, `--once --output
 * json`): times as ISO 8601 strings everywhere, never epoch milliseconds.
 */

export function renderCondition(c: NodeCondition) {
  return { type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: new Date(c.lastTransitionTime).toISOString() };
}

export function renderEvent(e: ProblemEvent) {
  return { kind: e.kind, severity: e.severity, conditionType: e.conditionType, reason: e.reason, message: e.message, at: new Date(e.at).toISOString() };
}

export function renderResult(r: ProbeResult) {
  return { healthy: r.healthy, reason: r.reason, message: r.message, at: new Date(r.at).toISOString(), durationMs: r.durationMs, figures: r.figures };
}
