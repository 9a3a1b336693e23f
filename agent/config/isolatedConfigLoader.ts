import { spawnSync } from 'node:child_process';
import { ConfigError } from '../../common/config/configError.js';
import type { AgentConfig } from './schema.js';

type CheckResult = { ok: true; config: AgentConfig } | { ok: false; issues: string[]; source: string };

/** The hidden flag that makes the agent's entry point validate and print its config (configCheck.ts). */
export const checkConfigFlag = '--check-config-json';

/**
 * The child's command line: the agent's own Node flags (its memory flags: without them the child
 * peaks at 80 MiB instead of 60, next to the agent), but no inspector, whose port the agent holds.
 */
export function configCheckArgs(execArgv: readonly string[], entry: string, file: string | undefined): string[] {
  const flags = execArgv.filter((flag) => !/^--(inspect|debug)/.test(flag));
  return [...flags, entry, checkConfigFlag, ...(file !== undefined ? ['--config', file] : [])];
}

/**
 * loadAgentConfig, run once at start in a short-lived child process of the same entry point
 * (see configCheck.ts for why).
 */
export function loadAgentConfigIsolated(file: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const args = configCheckArgs(process.execArgv, process.argv[1] as string, file);
  const child = spawnSync(process.execPath, args, { env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 30_000 });
  let result: CheckResult;
  try {
    result = JSON.parse(child.stdout) as CheckResult;
  } catch {
    const why = child.error?.message ?? (child.stderr.trim() || `exit code ${child.status}`);
    throw new Error(`validating the configuration failed: ${why}`);
  }
  if (!result.ok) throw new ConfigError(result.issues, result.source);
  return result.config;
}
