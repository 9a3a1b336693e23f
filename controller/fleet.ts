import { evaluateBreaker } from './circuitBreaker.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import { assessHealth } from './detection.js';
import type { NodeFacts } from './nodeHealth.js';
import { isInFlight, type StoredState } from './remediationState.js';
import { isLeaving } from './skipRules.js';

/**
 * What one node's decision needs to know about all the others. Everything but the storm
 * memory is recomputed from the Nodes (their facts and stored states) on every pass, so a
 * failed-over controller sees the same fleet as its predecessor; the storm memory is kept on
 * the leader Lease (fleetMemory.ts) for the same reason.
 */
export interface FleetSummary {
  /** Nodes the circuit breaker counts: ever Ready (or with a ladder state) and not leaving. */
  nodes: number;
  /** Of those, how many are unhealthy by the detection rules (failing for a moment does not count). */
  unhealthy: number;
  /** Of those, how many have a quarantine condition True. */
  quarantineWanted: number;
  /** Nodes with a remediation sequence under way (any node not leaving the cluster, counted or not). */
  inFlight: number;
  /** Latest step start anywhere in the fleet (epoch ms). */
  lastStartAt?: number;
  /** Whether the remediation breaker was open at the last pass. */
  breakerOpen: boolean;
  /** When the breaker last closed (epoch ms): the storm cooldown runs from here. */
  stormEndedAt?: number;
  /** Paused at run time (the annotation on the controller's Lease). */
  paused: boolean;
}

export interface FleetEntry {
  facts: NodeFacts;
  state: StoredState;
}

export function summariseFleet(
  entries: Iterable<FleetEntry>,
  now: number,
  config: ControllerConfig,
  previous: Pick<FleetSummary, 'breakerOpen' | 'stormEndedAt' | 'lastStartAt'> | undefined,
  paused: boolean,
): FleetSummary {
  let nodes = 0;
  let unhealthy = 0;
  let quarantineWanted = 0;
  let inFlight = 0;
  let lastStartAt = previous?.lastStartAt;
  for (const { facts, state } of entries) {
    if (isInFlight(state) && !isLeaving(facts)) inFlight += 1;
    if (state !== undefined && state.phase !== 'unreadable') {
      lastStartAt = Math.max(lastStartAt ?? 0, state.stepStartedAt);
    }
    // A node with a ladder state was Ready once, even if this replica never saw it so.
    if (isLeaving(facts) || (!facts.everReady && state === undefined)) continue;
    nodes += 1;
    if (assessHealth(facts, now, config.detection).state === 'unhealthy') unhealthy += 1;
    if (config.quarantine.conditions.some((type) => facts.conditions.some((c) => c.type === type && c.status === 'True'))) {
      quarantineWanted += 1;
    }
  }
  const breakerOpen = evaluateBreaker(nodes, unhealthy, config.safety.circuitBreaker).open;
  const summary: FleetSummary = { nodes, unhealthy, quarantineWanted, inFlight, breakerOpen, paused };
  if (lastStartAt !== undefined) summary.lastStartAt = lastStartAt;
  const stormEndedAt = previous?.breakerOpen && !breakerOpen ? now : previous?.stormEndedAt;
  if (stormEndedAt !== undefined) summary.stormEndedAt = stormEndedAt;
  return summary;
}
