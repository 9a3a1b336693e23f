import type { TranslatedPattern } from './re2.js';

/**
 * A system-log monitor as NPD's rule files describe one (`config/kernel-monitor.json` of
 * kubernetes/node-problem-detector): the conditions it owns with their healthy defaults, and
 * rules that turn log lines into an Event (`temporary`) or a condition (`permanent`). This is
 * the validated, translated form the config child hands the agent: no zod, no file reads.
 */
export interface LogRuleSet {
  /** Where the rules came from: `built-in kernel`, or the file's path. */
  origin: string;
  /** NPD's `source`: the monitor's name, e.g. `kernel-monitor`. */
  source: string;
  /** Lines logged this long before the agent started are replayed (NPD's `lookback`). */
  lookbackMs: number;
  /** Lines a multi-line pattern may span (NPD's `bufferSize`). */
  bufferSize: number;
  conditions: LogCondition[];
  rules: LogRule[];
}

export interface LogCondition {
  type: string;
  /** The healthy reason and message, as NPD's `conditions[]` give them (e.g. KernelHasNoDeadlock). */
  reason: string;
  message: string;
}

export interface LogRule {
  type: 'temporary' | 'permanent';
  /** For a permanent rule: the condition it turns True. */
  condition?: string;
  reason: string;
  /** The RE2 pattern as written, for messages. */
  pattern: string;
  /** The same pattern for JavaScript (re2.ts). */
  compiled: TranslatedPattern;
  /** NPD's `patternGeneratedMessageSuffix`, appended to the message. */
  messageSuffix?: string;
  /** Ours: a permanent condition set by this rule clears when no line matched it for this long. */
  clearAfterSeconds?: number;
}

/**
 * NPD's rule-file shape (what a file may hold). `clearAfterSeconds` is our one addition; NPD
 * ignores keys it does not know, so a file using it still loads in NPD.
 */
export interface NpdLogMonitorFile {
  plugin?: string;
  pluginConfig?: unknown;
  logPath?: string;
  lookback?: string;
  delay?: string;
  bufferSize?: number;
  source: string;
  metricsReporting?: boolean;
  conditions?: LogCondition[];
  rules: Array<{ type: 'temporary' | 'permanent'; condition?: string; reason: string; pattern: string; patternGeneratedMessageSuffix?: string; clearAfterSeconds?: number }>;
}
