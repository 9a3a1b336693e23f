import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { LogCondition } from './logRules.js';
import { RuleFileError, npdMonitorKeys, npdRuleKeys, parseGoDuration, parseNpdFile, permanentConditionsDeclared, readJsonFile } from './ruleFile.js';

/**
 * Reads NPD custom-plugin-monitor files as they are (`config/custom-plugin-monitor.json`,
 * `health-checker-kubelet.json`, ... of kubernetes/node-problem-detector), with NPD's defaults
 * and checks (pkg/custompluginmonitor/types/config.go). Runs in the config child only (it loads
 * zod); the agent gets the PluginSet.
 */

/** A file's plugins, validated, with NPD's defaults applied and every path resolved. */
export interface PluginSet {
  /** The file's path. */
  origin: string;
  /** NPD's `source`, e.g. `ntp-custom-plugin-monitor`. */
  source: string;
  /** Plugins run here (NPD's own working directory). */
  workingDir: string;
  /** At most this many of the file's plugins run at once. */
  concurrency: number;
  /** A message is cut to this many bytes. */
  maxOutputLength: number;
  /** NPD's enable_message_change_based_condition_update: a True condition takes each new message. */
  messageChangeUpdates: boolean;
  conditions: LogCondition[];
  rules: PluginRule[];
}

export interface PluginRule {
  type: 'temporary' | 'permanent';
  /** For a permanent rule: the condition its exit status sets. */
  condition?: string;
  reason: string;
  /** As the file writes it, for messages. */
  path: string;
  /** The file to run: `path` resolved against workingDir. */
  command: string;
  args: string[];
  /** The rule's own timeout where it is shorter than the file's, else the file's. */
  timeoutMs: number;
  intervalMs: number;
}

/** NPD's defaults (config.go). */
const defaults = { interval: '30s', timeout: '5s', maxOutputLength: 80, concurrency: 3 };
/** setTimeout's limit is 2^31-1 ms (24.8 days): longer intervals would fire at once. */
const maxDurationMs = 24 * 86_400_000;

/**
 * A Go duration above zero, in ms. Go's time.ParseDuration takes a sign; NPD then refuses a
 * negative interval but runs a negative timeout as an instant one, which would kill every
 * plugin: both are refused here.
 */
const positiveDuration = z.string().transform((text, ctx) => {
  const negative = text.startsWith('-');
  const ms = parseGoDuration(text.replace(/^[-+]/, ''));
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a Go duration; write one such as "30s", "5m" or "1h30m"` });
    return z.NEVER;
  }
  if (negative || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${text}" must be above zero, e.g. "5s"` });
    return z.NEVER;
  }
  if (ms > maxDurationMs) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is longer than 24 days; use at most "576h"` });
    return z.NEVER;
  }
  return ms;
});

const pluginFileSchema = z
  .strictObject({
    plugin: z.string().refine((p) => p === 'custom', 'must be "custom" (a custom-plugin-monitor file); system-log-monitor files go in monitors.kernel.ruleFiles'),
    pluginConfig: z
      .strictObject({
        invoke_interval: positiveDuration.prefault(defaults.interval),
        timeout: positiveDuration.prefault(defaults.timeout),
        max_output_length: z.number().int().min(0).default(defaults.maxOutputLength),
        concurrency: z.number().int().min(1, 'must be at least 1 (NPD waits forever with 0)').max(64, 'must be at most 64: each one is a process').default(defaults.concurrency),
        enable_message_change_based_condition_update: z.boolean().default(false),
        skip_initial_status: z.boolean().default(false),
      })
      .prefault({}),
    ...npdMonitorKeys,
    rules: z.array(
      z.strictObject({
        ...npdRuleKeys,
        path: z.string().min(1, 'must name the plugin to run, e.g. ./config/plugin/check_ntp.sh'),
        args: z.array(z.string()).default([]),
        timeout: positiveDuration.optional(),
        invoke_interval: positiveDuration.optional(),
      }),
    ),
  })
  .superRefine((file, ctx) => {
    permanentConditionsDeclared(file, ctx);
    file.rules.forEach((rule, i) => {
      if (rule.timeout !== undefined && rule.timeout > file.pluginConfig.timeout) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'timeout'], message: `${rule.timeout / 1000}s is longer than pluginConfig.timeout (${file.pluginConfig.timeout / 1000}s), which NPD refuses too; lower it or raise pluginConfig.timeout` });
      }
    });
  });

/** The file to run, or why it cannot be run (NPD checks only that it exists). */
function resolvePlugin(path: string, workingDir: string): { command: string } | { problem: string } {
  const command = isAbsolute(path) ? path : resolve(workingDir, path);
  const where = command === path ? '' : ` (${command}: relative paths resolve against monitors.customPlugins.workingDir ${workingDir}, as NPD's against its working directory)`;
  try {
    if (!statSync(command).isFile()) return { problem: `"${path}"${where} is not a file; name the plugin itself` };
    accessSync(command, constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { problem: `"${path}"${where} does not exist; install the plugin there or correct the path` };
    if (code === 'EACCES') return { problem: `"${path}"${where} is not executable by the agent; chmod +x it` };
    return { problem: `"${path}"${where}: ${(err as Error).message}` };
  }
  return { command };
}

/** Validates one file's content (already parsed JSON) and resolves its plugins. */
export function pluginSetFrom(content: unknown, origin: string, workingDir: string): PluginSet {
  const file = parseNpdFile(pluginFileSchema, content);
  const config = file.pluginConfig;
  const problems: string[] = [];
  const rules = file.rules.map((rule, i): PluginRule => {
    const plugin = resolvePlugin(rule.path, workingDir);
    if ('problem' in plugin) problems.push(`rules.${i}.path: ${plugin.problem}`);
    return {
      type: rule.type,
      ...(rule.type === 'permanent' ? { condition: rule.condition } : {}),
      reason: rule.reason,
      path: rule.path,
      command: 'command' in plugin ? plugin.command : rule.path,
      args: rule.args,
      timeoutMs: Math.min(rule.timeout ?? config.timeout, config.timeout),
      intervalMs: rule.invoke_interval ?? config.invoke_interval,
    };
  });
  if (problems.length > 0) throw new RuleFileError(problems);
  return {
    origin,
    source: file.source,
    workingDir,
    concurrency: config.concurrency,
    maxOutputLength: config.max_output_length,
    messageChangeUpdates: config.enable_message_change_based_condition_update,
    conditions: file.conditions,
    rules,
  };
}

/** Reads and validates an NPD custom-plugin-monitor file from disk. */
export function readPluginFile(path: string, workingDir: string): PluginSet {
  return pluginSetFrom(readJsonFile(path), path, workingDir);
}
