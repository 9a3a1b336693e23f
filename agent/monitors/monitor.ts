import type { BootFacts, ConditionRule, NodeCondition } from '../conditions/conditionEngine.js';
import type { ProbeResult } from '../probes/probe.js';

/**
 * A streaming source (NPD's Monitor, whose Start returns a channel): records as they arrive,
 * turned into the same ProbeResult a probe returns, so hysteresis, clearing, events and
 * publishing stay in the condition engine and its consumers.
 */
export interface Monitor {
  readonly name: string;
  /** The conditions it owns, with how each clears. */
  readonly rules: ConditionRule[];
  /** The boot it reads (for boot-scoped conditions), when it knows it. */
  readonly boot?: BootFacts;
  /** Opens what needs the privileges the agent drops once started (the kernel log), before it drops them. */
  openPrivileged?(): void;
  start(sink: MonitorSink): void;
  stop(): void;
}

export interface MonitorSink {
  emit(result: ProbeResult): void;
  /** The engine's current state of a condition (adopted from the Node, or set since). */
  condition(type: string): NodeCondition | undefined;
}
