import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { SkipRule } from './decide.js';
import type { FleetSummary } from './fleet.js';
import type { Step } from './remediationState.js';

/**
 * Prometheus metrics of the controller: what the ladder did, step by step, and why it is not
 * doing anything when it is holding back (circuit breaker, in-flight limit, ...).
 */
export type StepFailureCause = 'provider_error' | 'inconclusive' | 'still_unhealthy';

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly started = new Counter({
    name: 'nodepulse_remediation_steps_started_total',
    help: 'Remediation steps started (reboot, reimage, redeploy).',
    labelNames: ['step', 'provider'],
    registers: [this.registry],
  });
  private readonly succeeded = new Counter({
    name: 'nodepulse_remediation_steps_succeeded_total',
    help: 'Steps after which the node became healthy again.',
    labelNames: ['step'],
    registers: [this.registry],
  });
  private readonly failed = new Counter({
    name: 'nodepulse_remediation_steps_failed_total',
    help: 'Steps that failed: the provider reported an error, or the node was still unhealthy after its recovery wait.',
    labelNames: ['step', 'cause'],
    registers: [this.registry],
  });
  private readonly gaveUp = new Counter({
    name: 'nodepulse_remediation_needs_human_total',
    help: 'Ladders that gave up and marked their node as needing a human.',
    registers: [this.registry],
  });
  private readonly breakerOpen = new Gauge({
    name: 'nodepulse_remediation_circuit_breaker_open',
    help: '1 while too many nodes are unhealthy at once for any remediation to start.',
    registers: [this.registry],
  });
  private readonly unhealthy = new Gauge({
    name: 'nodepulse_remediation_unhealthy_nodes',
    help: 'Nodes counted by the circuit breaker that are not healthy right now.',
    registers: [this.registry],
  });
  private readonly counted = new Gauge({
    name: 'nodepulse_remediation_counted_nodes',
    help: 'Nodes the circuit breaker counts (ever Ready, not leaving the cluster).',
    registers: [this.registry],
  });
  private readonly inFlight = new Gauge({
    name: 'nodepulse_remediation_in_flight',
    help: 'Nodes with a remediation sequence under way.',
    registers: [this.registry],
  });
  private readonly blocked = new Gauge({
    name: 'nodepulse_remediation_blocked_nodes',
    help: 'Nodes that need a remediation which a rule holds back, by rule.',
    labelNames: ['rule'],
    registers: [this.registry],
  });
  private readonly leader = new Gauge({
    name: 'nodepulse_controller_leader',
    help: '1 while this replica holds the leader Lease and acts.',
    registers: [this.registry],
  });
  private readonly cacheStale = new Gauge({
    name: 'nodepulse_controller_cache_stale_seconds',
    help: 'How long ago the informer cache was last known current (0 while its watches are open).',
    labelNames: ['informer'],
    registers: [this.registry],
  });
  private readonly informerErrors = new Counter({
    name: 'nodepulse_controller_informer_errors_total',
    help: 'Failed lists and broken watches of the informers; each is retried with backoff.',
    labelNames: ['informer', 'during'],
    registers: [this.registry],
  });
  private readonly reconciles = new Counter({
    name: 'nodepulse_controller_reconciles_total',
    help: 'Nodes reconciled (one decision each) by the leader.',
    registers: [this.registry],
  });
  private readonly blockedRules = new Set<string>();

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'nodepulse_controller_', eventLoopMonitoringPrecision: 1000 });
  }

  stepStarted(step: Step, provider: string): void {
    this.started.inc({ step, provider });
  }

  stepSucceeded(step: Step): void {
    this.succeeded.inc({ step });
  }

  stepFailed(step: Step, cause: StepFailureCause): void {
    this.failed.inc({ step, cause });
  }

  neededHuman(): void {
    this.gaveUp.inc();
  }

  observeFleet(fleet: FleetSummary): void {
    this.breakerOpen.set(fleet.breakerOpen ? 1 : 0);
    this.unhealthy.set(fleet.unhealthy);
    this.counted.set(fleet.nodes);
    this.inFlight.set(fleet.inFlight);
  }

  /** Per pass: how many nodes each rule holds back now; rules absent from `counts` go to 0. */
  observeBlocked(counts: ReadonlyMap<SkipRule, number>): void {
    for (const rule of this.blockedRules) if (!counts.has(rule as SkipRule)) this.blocked.set({ rule }, 0);
    for (const [rule, n] of counts) {
      this.blocked.set({ rule }, n);
      this.blockedRules.add(rule);
    }
  }

  reconciled(): void {
    this.reconciles.inc();
  }

  observeCacheStaleness(informer: string, staleMs: number): void {
    this.cacheStale.set({ informer }, Number.isFinite(staleMs) ? staleMs / 1000 : -1);
  }

  informerFailed(informer: string, during: 'list' | 'watch'): void {
    this.informerErrors.inc({ informer, during });
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
