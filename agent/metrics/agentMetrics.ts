import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeCondition, ProblemEvent } from '../conditions/conditionEngine.js';
import type { ProbeResult } from '../probes/probe.js';

/**
 * Prometheus metrics of the agent. Besides our own names it exports NPD's
 * `problem_counter{reason}` and `problem_gauge{type,reason}` so existing NPD dashboards and
 * alerts keep working.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly probeDuration = new Histogram({
    name: 'nodepulse_probe_duration_seconds',
    help: 'Time one probe sample took.',
    labelNames: ['probe'],
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });
  private readonly probeFailures = new Counter({
    name: 'nodepulse_probe_failures_total',
    help: 'Samples that found a problem (or could not run), by reason.',
    labelNames: ['probe', 'reason'],
    registers: [this.registry],
  });
  private readonly conditionGauge = new Gauge({
    name: 'nodepulse_condition',
    help: '1 when the node condition of this type is True, 0 when False, -1 when Unknown.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  private readonly problemCounter = new Counter({
    name: 'problem_counter',
    help: 'Number of times a specific type of problem has occurred (node-problem-detector name).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly problemGauge = new Gauge({
    name: 'problem_gauge',
    help: 'Whether a specific type of problem is affecting the node (node-problem-detector name).',
    labelNames: ['type', 'reason'],
    registers: [this.registry],
  });
  /** The reason last exported per condition type, so a changed reason resets its old series. */
  private readonly gaugeReason = new Map<string, string>();

  constructor(defaultMetrics = true) {
    // Event-loop delay sampled once a second, not prom-client's default 10 ms, which wakes the
    // agent 100 times a second: 13.9 -> 1.7 CPU s/h (bench/footprint.ts).
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'nodepulse_', eventLoopMonitoringPrecision: 1000 });
  }

  recordResult(result: ProbeResult): void {
    this.probeDuration.observe({ probe: result.probe }, result.durationMs / 1000);
    if (!result.healthy) this.probeFailures.inc({ probe: result.probe, reason: result.reason });
  }

  recordCondition(condition: NodeCondition, events: readonly ProblemEvent[]): void {
    const value = condition.status === 'True' ? 1 : condition.status === 'False' ? 0 : -1;
    this.conditionGauge.set({ type: condition.type }, value);
    const previous = this.gaugeReason.get(condition.type);
    if (previous !== undefined && previous !== condition.reason) {
      this.problemGauge.remove({ type: condition.type, reason: previous });
    }
    this.gaugeReason.set(condition.type, condition.reason);
    this.problemGauge.set({ type: condition.type, reason: condition.reason }, condition.status === 'True' ? 1 : 0);
    this.recordEvents(events);
  }

  /** NPD counts every problem it reports, one-off ones (an OOM kill) included. */
  recordEvents(events: readonly ProblemEvent[]): void {
    for (const event of events) {
      if (event.severity === 'Warning') this.problemCounter.inc({ reason: event.reason });
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
