import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ConditionEngine, type Observation } from './conditions/conditionEngine.js';
import { engineReasons } from '../common/contract.js';
import type { Probe, ProbeResult } from './probes/probe.js';

export interface ProbeLoopEvents {
  result: [ProbeResult];
  observation: [Observation, ProbeResult];
}

/**
 * Samples every probe on its own interval, never two runs of one probe at once, each run
 * bounded by a timeout, and feeds the results to the condition engine. Consumers (publisher,
 * endpoint, metrics) subscribe to `result` and `observation`.
 */
export class ProbeLoop extends EventEmitter<ProbeLoopEvents> {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly latest = new Map<string, ProbeResult>();
  private readonly inFlight = new Map<string, Promise<ProbeResult>>();
  private readonly controller = new AbortController();
  /** Epoch ms of the last completed sample of any probe; /healthz reads it. */
  lastProgressAt = Date.now();

  constructor(
    readonly probes: readonly Probe[],
    readonly engine: ConditionEngine,
    private readonly log: Logger,
  ) {
    super();
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
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(probe.sampleTimeoutMs ?? Math.max(1000, probe.intervalMs))]);
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
