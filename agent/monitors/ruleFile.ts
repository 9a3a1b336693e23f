import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { LogRuleSet } from './logRules.js';
import { Re2Error, translateRe2 } from './re2.js';

/**
 * Reads NPD system-log-monitor rule files as they are (`config/kernel-monitor.json`,
 * `readonly-monitor.json`, ...), validates them and translates their RE2 patterns. Runs in
 * the config child only (it loads zod); the agent gets the LogRuleSet.
 */

/** Go's time.ParseDuration, for NPD's `lookback` and `delay` ("5m", "1h30m", "0"). */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    part.lastIndex = pos;
    const match = part.exec(text);
    if (!match) return undefined;
    total += Number(match[1]) * (units[match[2] as string] as number);
    pos = part.lastIndex;
  }
  return text.length > 0 ? total : undefined;
}

const camel = z.string().regex(/^[A-Z][A-Za-z0-9]*$/, 'must be CamelCase, e.g. KernelDeadlock');
const goDuration = z.string().refine((t) => parseGoDuration(t) !== undefined, 'must be a Go duration, e.g. 5m, 90s or 1h30m');

/** The keys every NPD monitor file has, beside its plugin's own. */
export const npdMonitorKeys = {
  source: z.string().min(1),
  metricsReporting: z.boolean().optional(),
  conditions: z.array(z.strictObject({ type: camel, reason: camel, message: z.string() })).default([]),
};

/** What every NPD rule says: a one-off problem (Event) or a condition, and its reason. */
export const npdRuleKeys = {
  type: z.enum(['temporary', 'permanent']),
  condition: camel.optional(),
  reason: camel,
};

/** A permanent rule names a condition declared in conditions[], with its healthy default (NPD refuses it otherwise). */
export function permanentConditionsDeclared(file: { conditions: Array<{ type: string }>; rules: Array<{ type: string; condition?: string | undefined }> }, ctx: z.RefinementCtx): void {
  const declared = new Set(file.conditions.map((c) => c.type));
  file.rules.forEach((rule, i) => {
    if (rule.type !== 'permanent') return;
    if (!rule.condition) ctx.addIssue({ code: 'custom', path: ['rules', i, 'condition'], message: 'a permanent rule must name the condition it sets' });
    else if (!declared.has(rule.condition)) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'condition'], message: `"${rule.condition}" is not in conditions[]; declare it there with its healthy reason and message` });
    }
  });
}

const npdFileSchema = z
  .strictObject({
    plugin: z
      .string()
      .refine((p) => p === 'kmsg', 'only "kmsg" (/dev/kmsg) is read by nodepulse; the filelog and journald plugins are not supported')
      .default('kmsg'),
    pluginConfig: z.unknown().optional(),
    logPath: z.string().refine((p) => p === '/dev/kmsg', 'must be /dev/kmsg (the kernel log); point monitors.kernel.kmsgPath elsewhere for a test').default('/dev/kmsg'),
    lookback: goDuration.default('0'),
    delay: goDuration.optional(),
    bufferSize: z.number().int().min(1).max(100).default(10),
    ...npdMonitorKeys,
    rules: z.array(
      z.strictObject({
        ...npdRuleKeys,
        pattern: z.string().min(1),
        patternGeneratedMessageSuffix: z.string().optional(),
        /** Ours: a permanent rule's condition clears when no line matched it for this long. */
        clearAfterSeconds: z.number().positive().max(30 * 86_400).optional(),
      }),
    ),
  })
  .superRefine((file, ctx) => {
    permanentConditionsDeclared(file, ctx);
    file.rules.forEach((rule, i) => {
      if (rule.type !== 'permanent' && rule.clearAfterSeconds !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'clearAfterSeconds'], message: 'only a permanent rule sets a condition that can clear' });
      }
    });
    file.rules.forEach((rule, i) => {
      try {
        translateRe2(rule.pattern);
      } catch (err) {
        if (!(err instanceof Re2Error)) throw err;
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'pattern'], message: err.message });
      }
    });
  });

export class RuleFileError extends Error {
  override name = 'RuleFileError';
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
  }
}

/** An NPD file's content through its schema; each problem is one issue naming the key. */
export function parseNpdFile<T extends z.ZodType>(schema: T, content: unknown): z.output<T> {
  const parsed = schema.safeParse(content);
  if (!parsed.success) {
    throw new RuleFileError(parsed.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`));
  }
  return parsed.data;
}

/** Validates one file's content (already parsed JSON) and translates its patterns. */
export function ruleSetFrom(content: unknown, origin: string): LogRuleSet {
  const file = parseNpdFile(npdFileSchema, content);
  return {
    origin,
    source: file.source,
    lookbackMs: parseGoDuration(file.lookback) as number,
    bufferSize: file.bufferSize,
    conditions: file.conditions,
    rules: file.rules.map((rule) => ({
      type: rule.type,
      ...(rule.type === 'permanent' ? { condition: rule.condition } : {}),
      reason: rule.reason,
      pattern: rule.pattern,
      compiled: translateRe2(rule.pattern),
      ...(rule.patternGeneratedMessageSuffix ? { messageSuffix: rule.patternGeneratedMessageSuffix } : {}),
      ...(rule.clearAfterSeconds !== undefined ? { clearAfterSeconds: rule.clearAfterSeconds } : {}),
    })),
  };
}

/** Reads and validates an NPD rule file from disk. */
export function readRuleFile(path: string): LogRuleSet {
  return ruleSetFrom(readJsonFile(path), path);
}

/** An NPD config file's JSON, or a RuleFileError saying why not. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RuleFileError([`cannot read it: ${(err as Error).message}`]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new RuleFileError([`not valid JSON: ${(err as Error).message}`]);
  }
}

