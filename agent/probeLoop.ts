import { EventEmitter } from 'node:events';
import { deadlineSignal } from '../common/deadline.js';
import type { Logger } from '../common/log.js';
import { ConditionEngine, type Observation, type ProblemEvent } from './conditions/conditionEngine.js';
import { engineReasons } from '../common/contract.js';
import type { Monitor } from './monitors/monitor.js';
import type { Probe, ProbeResult } from './probes/probe.js';

export interface ProbeLoopEvents {
  result: [ProbeResult];
  /** A condition was looked at (a probe's sample, a monitor's record, a clearing rule). */
  observation: [Observation, ProbeResult | undefined];
  /** One-off problems of a monitor (NPD's temporary rules): Events, no condition. */
  events: [ProblemEvent[]];
}

/**
 * Samples every probe on its own interval, never two runs of one probe at once, each run
 * bounded by a timeout, and feeds the results to the condition engine; streaming monitors
 * feed it the same results as their records arrive. Consumers (publisher, endpoint, metrics)
 * subscribe to `result`, `observation` and `events`.
 */
export class ProbeLoop extends EventEmitter<ProbeLoopEvents> {
  private readonly timers = new Set<NodeJS.Timeout>();
  private monitorsRunning = false;
  private readonly latest = new Map<string, ProbeResult>();
  private readonly inFlight = new Map<string, Promise<ProbeResult>>();
  private readonly controller = new AbortController();
  /** Epoch ms of the last completed sample of any probe; /healthz reads it. */
  lastProgressAt = Date.now();

  constructor(
    readonly probes: readonly Probe[],
    readonly engine: ConditionEngine,
    private readonly log: Logger,
    readonly monitors: readonly Monitor[] = [],
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  /**
   * Starts the streaming monitors. In a cluster this waits for adoption, so that a replayed
   * lookback meets the conditions already on the Node: first a boot-scoped condition of an
   * earlier boot clears, then records arrive.
   */
  startMonitors(): void {
    if (this.monitorsRunning || this.monitors.length === 0) return;
    this.monitorsRunning = true;
    for (const observation of this.engine.clearEarlierBoots(this.now())) this.emit('observation', observation, undefined);
    const sink = { emit: (result: ProbeResult) => this.feed(result), condition: (type: string) => this.engine.get(type) };
    for (const monitor of this.monitors) monitor.start(sink);
    if (this.monitors.some((m) => m.rules.some((r) => r.clearAfterMs !== undefined))) {
      const timer = setInterval(() => {
        for (const observation of this.engine.expire(this.now())) this.emit('observation', observation, undefined);
      }, 1000);
      this.timers.add(timer);
    }
  }

  /** A monitor's result, as it arrives. */
  feed(result: ProbeResult): void {
    this.emit('result', result);
    if (result.temporary) {
      const event = this.engine.oneOff(result);
      if (event) this.emit('events', [event]);
      return;
    }
    this.latest.set(result.probe, result);
    const observation = this.engine.observe(result);
    if (observation) this.emit('observation', observation, result);
  }

  start(): void {
    for (const probe of this.probes) {
      void this.sample(probe);
      const timer = setInterval(() => void this.sample(probe), probe.intervalMs);
      this.timers.add(timer);
    }
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    for (const monitor of this.monitors) monitor.stop();
    this.controller.abort();
  }

  latestResults(): ProbeResult[] {
    return [...this.latest.values()];
  }

  /** Runs one probe unless it is still running, then publishes the result. */
  sample(probe: Probe): Promise<ProbeResult> {
    const running = this.inFlight.get(probe.name);
    if (running) return running;
    const run = this.runOnce(probe).then((res) => {
      this.inFlight.delete(probe.name);
      this.lastProgressAt = Date.now();
      this.latest.set(probe.name, res);
      this.emit('result', res);
      const observation = this.engine.observe(res);
      if (observation) this.emit('observation', observation, res);
      return res;
    });
    this.inFlight.set(probe.name, run);
    return run;
  }

  private async runOnce(probe: Probe): Promise<ProbeResult> {
    const startedAt = Date.now();
    const signal = AbortSignal.any([this.controller.signal, deadlineSignal(probe.sampleTimeoutMs ?? Math.max(1000, probe.intervalMs))]);
    try {
      return await probe.run(signal);
    } catch (err) {
      const message = `${probe.name} probe failed: ${(err as Error)?.message ?? String(err)}`;
      this.log.warn({ probe: probe.name, err }, 'probe failed');
      return {
        probe: probe.name,
        at: startedAt,
        durationMs: Date.now() - startedAt,
        healthy: false,
        reason: engineReasons.probeError,
        message,
        figures: {},
      };
    }
  }
}
