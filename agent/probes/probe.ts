import { engineReasons } from '../../common/contract.js';

/**
 * The monitor contract every check implements (NPD's Monitor, reduced to what a sampler needs).
 * A probe reads the node and says what it measured; it knows nothing of Kubernetes, HTTP or
 * hysteresis. Its verdict is per sample: the condition engine decides when a streak of bad
 * samples becomes a Node condition.
 */
export type FigureValue = number | string | boolean | null | Figures | FigureValue[];
export interface Figures {
  [name: string]: FigureValue;
}

export interface Verdict {
  /** false when this sample shows a problem. */
  healthy: boolean;
  /** CamelCase reason, e.g. `IOThrottled`, `CPUPressureNormal`. */
  reason: string;
  /** One line for a person, with the measured figures that led to the verdict. */
  message: string;
  /**
   * The check ran and could not tell (an NPD plugin's exit status 2, or its timeout): the
   * condition turns Unknown with this reason, as NPD sets it, never True.
   */
  unknown?: boolean;
}

export interface ProbeResult extends Verdict {
  probe: string;
  /** Epoch milliseconds when the sample was taken. */
  at: number;
  /** How long the sample took, in milliseconds. */
  durationMs: number;
  figures: Figures;
  /**
   * A streaming monitor's one-off problem (NPD's temporary rule, e.g. an OOM kill): an Event
   * and nothing else; `probe` names the monitor, no condition is touched.
   */
  temporary?: boolean;
  /** Read back from before the agent started (a log's lookback): it may already be on the Node. */
  replayed?: boolean;
  /** The record's place in its log (the kernel's sequence number, per boot). */
  seq?: number;
}

export interface Probe {
  readonly name: string;
  /** How often the loop samples this probe, in milliseconds. */
  readonly intervalMs: number;
  /**
   * How long one sample may run before the loop cancels it (a `ProbeError`); default: the
   * interval, at least 1 s. A probe with its own per-check timeout sets this above that timeout,
   * so its own verdict (`<Check>Timeout`, with every check's figures) always comes first.
   */
  readonly sampleTimeoutMs?: number;
  /**
   * Takes one sample. Must resolve (never reject) for every failure of the thing it checks;
   * a rejection means the probe itself is broken and is reported as `ProbeError`.
   */
  run(signal: AbortSignal): Promise<ProbeResult>;
}

/**
 * The sample says nothing about the node: the probe failed (`ProbeError`) or could not read
 * its source (`ProbeReadError`, e.g. a wrong procRoot). An agent problem, reported as Unknown
 * as NPD reports a broken monitor, never as the node's problem.
 */
export function isAgentFault(verdict: Verdict): boolean {
  return verdict.unknown === true || verdict.reason === engineReasons.probeError || verdict.reason === engineReasons.probeReadError;
}

/** Builds a result with the timing filled in; probes call this once per sample. */
export function result(probe: string, startedAt: number, verdict: Verdict, figures: Figures): ProbeResult {
  return { probe, at: startedAt, durationMs: Date.now() - startedAt, ...verdict, figures };
}
