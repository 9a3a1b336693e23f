import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../cluster/binaries.js';

/** The tools of the Helm and monitoring tests, built by scripts/monitoring-binaries.sh. */
export type MonitoringTool = 'helm' | 'promtool' | 'prometheus';

const ENV_VAR: Record<MonitoringTool, string> = { helm: 'HELM', promtool: 'PROMTOOL', prometheus: 'PROMETHEUS' };
const BUILD_SCRIPT = 'scripts/monitoring-binaries.sh';

/** A cold build of prometheus takes minutes on a 2-core machine: give a test's beforeAll this long. */
export const COLD_BUILD_TIMEOUT_MS = 45 * 60_000;

const found = new Map<MonitoringTool, Promise<string>>();

/** The tool named by its environment variable, else the build script's cached (built on first use) binary. */
export function monitoringTool(tool: MonitoringTool): Promise<string> {
  let path = found.get(tool);
  if (!path) {
    path = locate(tool);
    found.set(tool, path);
  }
  return path;
}

async function locate(tool: MonitoringTool): Promise<string> {
  const variable = ENV_VAR[tool];
  const fromVar = process.env[variable];
  if (fromVar) {
    if (!isExecutable(fromVar)) throw new Error(`${variable}=${fromVar} is not an executable file; point it at a ${tool} binary or unset it`);
    return fromVar;
  }
  // Progress of a cold build goes to the terminal; stdout ends with `tool=path`.
  const result = await runTool('bash', [join(repoRoot(), BUILD_SCRIPT), tool], { timeoutMs: COLD_BUILD_TIMEOUT_MS, inheritStderr: true });
  const path = result.stdout.split('\n').find((line) => line.startsWith(`${tool}=`))?.slice(tool.length + 1);
  if (result.code !== 0 || !path || !isExecutable(path)) {
    throw new Error(`${BUILD_SCRIPT} ${tool} could not provide ${tool} (exit code ${result.code}; its message is above). Install Go 1.26.7+ so it can build it, or set ${variable} to a ${tool} binary.`);
  }
  return path;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never rejects on a non-zero exit (a test asserts on it). */
export async function runTool(
  binary: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; inheritStderr?: boolean } = {},
): Promise<ToolResult> {
  const child = spawn(binary, args, {
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', options.inheritStderr ? 'inherit' : 'pipe'],
    timeout: options.timeoutMs ?? 120_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin?.end(options.input ?? '');
  const code = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  return { code, stdout, stderr };
}
