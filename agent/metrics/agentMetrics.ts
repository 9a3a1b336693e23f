import type { NodeCondition, ProblemEvent } from '../conditions/conditionEngine.js';
import type { ProbeResult } from '../probes/probe.js';
import { registerProcessMetrics } from './processMetrics.js';
import { Counter, Gauge, Histogram, MetricsRegistry, exposition } from './promText.js';

/**
 * Prometheus metrics of the agent. Besides our own names it exports NPD's
 * `problem_counter{reason}` and `problem_gauge{type,reason}` so existing NPD dashboards and
 * alerts keep working.
 */
export class AgentMetrics {
  private readonly registry = new MetricsRegistry();
  private readonly probeDuration = this.registry.register(
    new Histogram('nodepulse_probe_duration_seconds', 'Time one probe sample took.', ['probe'], [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10]),
  );
  private readonly probeFailures = this.registry.register(
    new Counter('nodepulse_probe_failures_total', 'Samples that found a problem (or could not run), by reason.', ['probe', 'reason']),
  );
  private readonly conditionGauge = this.registry.register(
    new Gauge('nodepulse_condition', '1 when the node condition of this type is True, 0 when False, -1 when Unknown.', ['type']),
  );
  private readonly problemCounter = this.registry.register(
    new Counter('problem_counter', 'Number of times a specific type of problem has occurred (node-problem-detector name).', ['reason']),
  );
  private readonly problemGauge = this.registry.register(
    new Gauge('problem_gauge', 'Whether a specific type of problem is affecting the node (node-problem-detector name).', ['type', 'reason']),
  );
  /** The reason last exported per condition type, so a changed reason resets its old series. */
  private readonly gaugeReason = new Map<string, string>();

  private readonly stopProcessMetrics: () => void;

  constructor(processMetrics = true) {
    this.stopProcessMetrics = processMetrics ? registerProcessMetrics(this.registry, 'nodepulse_') : () => {};
  }

  stop(): void {
    this.stopProcessMetrics();
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

  text(): string {
    return this.registry.text();
  }

  get contentType(): string {
    return exposition;
  }
}
