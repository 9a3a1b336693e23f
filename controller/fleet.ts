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

/** What one node adds to the fleet's counts. */
export interface Contribution {
  /** Counted by the circuit breaker: ever Ready (or with a ladder state) and not leaving. */
  counted: boolean;
  unhealthy: boolean;
  quarantineWanted: boolean;
  inFlight: boolean;
  /** Its last step start (epoch ms). */
  startedAt?: number;
}

export function nodeContribution(facts: NodeFacts, state: StoredState, now: number, config: ControllerConfig): Contribution {
  const leaving = isLeaving(facts);
  // A node with a ladder state was Ready once, even if this replica never saw it so.
  const counted = !leaving && (facts.everReady || state !== undefined);
  const c: Contribution = {
    counted,
    unhealthy: counted && assessHealth(facts, now, config.detection).state === 'unhealthy',
    quarantineWanted:
      counted && config.quarantine.conditions.some((type) => facts.conditions.some((x) => x.type === type && x.status === 'True')),
    inFlight: isInFlight(state) && !leaving,
  };
  if (state !== undefined && state.phase !== 'unreadable') c.startedAt = state.stepStartedAt;
  return c;
}

/**
 * The fleet's counts kept up to date one node at a time, so a change to one node costs O(1)
 * rather than a scan of the fleet. It also follows the breaker: when it closes, the storm ends.
 */
export class FleetIndex {
  private readonly byNode = new Map<string, Contribution>();
  private nodes = 0;
  private unhealthy = 0;
  private quarantineWanted = 0;
  private inFlight = 0;
  private lastStartAt: number | undefined;
  private breakerOpen: boolean;
  private stormEndedAt: number | undefined;

  constructor(
    private readonly config: ControllerConfig,
    previous?: Pick<FleetSummary, 'breakerOpen' | 'stormEndedAt' | 'lastStartAt'>,
  ) {
    this.breakerOpen = previous?.breakerOpen ?? false;
    this.stormEndedAt = previous?.stormEndedAt;
    this.lastStartAt = previous?.lastStartAt;
  }

  /** Replaces one node's contribution; returns how the breaker moved, if it did. */
  set(name: string, contribution: Contribution, now: number): 'opened' | 'closed' | undefined {
    this.put(name, contribution);
    return this.follow(now);
  }

  /** Many nodes at once (a new leader's first look): the breaker is judged once, on the whole. */
  load(contributions: Iterable<[string, Contribution]>, now: number): 'opened' | 'closed' | undefined {
    for (const [name, c] of contributions) this.put(name, c);
    return this.follow(now);
  }

  delete(name: string, now: number): 'opened' | 'closed' | undefined {
    this.apply(this.byNode.get(name), -1);
    this.byNode.delete(name);
    return this.follow(now);
  }

  summary(paused: boolean): FleetSummary {
    const s: FleetSummary = {
      nodes: this.nodes,
      unhealthy: this.unhealthy,
      quarantineWanted: this.quarantineWanted,
      inFlight: this.inFlight,
      breakerOpen: this.breakerOpen,
      paused,
    };
    if (this.lastStartAt !== undefined) s.lastStartAt = this.lastStartAt;
    if (this.stormEndedAt !== undefined) s.stormEndedAt = this.stormEndedAt;
    return s;
  }

  private put(name: string, contribution: Contribution): void {
    this.apply(this.byNode.get(name), -1);
    this.byNode.set(name, contribution);
    this.apply(contribution, 1);
    if (contribution.startedAt !== undefined) this.lastStartAt = Math.max(this.lastStartAt ?? 0, contribution.startedAt);
  }

  private apply(c: Contribution | undefined, sign: 1 | -1): void {
    if (!c) return;
    if (c.counted) this.nodes += sign;
    if (c.unhealthy) this.unhealthy += sign;
    if (c.quarantineWanted) this.quarantineWanted += sign;
    if (c.inFlight) this.inFlight += sign;
  }

  private follow(now: number): 'opened' | 'closed' | undefined {
    const open = evaluateBreaker(this.nodes, this.unhealthy, this.config.safety.circuitBreaker).open;
    if (open === this.breakerOpen) return undefined;
    this.breakerOpen = open;
    if (open) return 'opened';
    this.stormEndedAt = now;
    return 'closed';
  }
}

/** The whole fleet at once: what the index holds after every node was set (for tests and one-off summaries). */
export function summariseFleet(
  entries: Iterable<FleetEntry>,
  now: number,
  config: ControllerConfig,
  previous: Pick<FleetSummary, 'breakerOpen' | 'stormEndedAt' | 'lastStartAt'> | undefined,
  paused: boolean,
): FleetSummary {
  const index = new FleetIndex(config, previous);
  const contributions = [...entries].map(({ facts, state }, i): [string, Contribution] => [`${i}/${facts.name}`, nodeContribution(facts, state, now, config)]);
  index.load(contributions, now);
  return index.summary(paused);
}
