import { formatDuration } from '../common/duration.js';
import type { DetectionConfig } from './config/controllerConfig.js';
import type { NodeFacts } from './nodeHealth.js';

/**
 * The AKS detection rule, with every duration from the config:
 * - unhealthy when Ready is not True on consecutive observations spanning `notReadySeconds`,
 *   or when the node reports no status for `noStatusSeconds` (Ready Unknown, or a heartbeat
 *   that old), or when a configured agent condition stays True for its duration;
 * - `failing` is the time before that: something is wrong but it has not lasted long enough.
 */
export type Health =
  | { state: 'healthy' }
  | { state: 'failing'; since: number; unhealthyAt: number; why: string }
  | { state: 'unhealthy'; since: number; unhealthyAt: number; why: string };

interface Finding {
  /** When the problem began. */
  since: number;
  /** When it has lasted long enough to make the node unhealthy. */
  unhealthyAt: number;
  why: string;
}

export function assessHealth(facts: NodeFacts, now: number, config: DetectionConfig): Health {
  const findings: Finding[] = [];
  if (facts.ready !== 'True') {
    const what = facts.ready === 'Missing' ? 'no Ready condition' : `Ready=${facts.ready}`;
    findings.push({ since: facts.readySince, unhealthyAt: facts.readySince + config.notReadySeconds * 1000, why: what });
  }
  if (facts.ready === 'Unknown') {
    findings.push({
      since: facts.readySince,
      unhealthyAt: facts.readySince + config.noStatusSeconds * 1000,
      why: 'no status (Ready=Unknown)',
    });
  }
  if (facts.lastHeartbeatAt !== undefined && now - facts.lastHeartbeatAt >= config.noStatusSeconds * 1000) {
    findings.push({
      since: facts.lastHeartbeatAt,
      unhealthyAt: facts.lastHeartbeatAt + config.noStatusSeconds * 1000,
      why: 'no status (heartbeat stale)',
    });
  }
  for (const watched of config.agentConditions) {
    const condition = facts.conditions.find((c) => c.type === watched.type);
    if (condition?.status !== 'True') continue;
    findings.push({ since: condition.since, unhealthyAt: condition.since + watched.forSeconds * 1000, why: `${watched.type}=True` });
  }
  if (findings.length === 0) return { state: 'healthy' };
  // The finding that makes the node unhealthy first decides; the earliest start tells the story.
  const first = findings.reduce((a, b) => (b.unhealthyAt < a.unhealthyAt ? b : a));
  const since = Math.min(...findings.map((f) => f.since));
  return { state: now >= first.unhealthyAt ? 'unhealthy' : 'failing', since, unhealthyAt: first.unhealthyAt, why: first.why };
}

export { formatDuration };
