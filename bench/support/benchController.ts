import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectNode } from './agentProcess.js';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/**
 * Starts `dist/controller/cli.js` with `config` (JSON) against `kubeconfig`, metrics on loopback.
 * `env` adds to the bench's environment; `unsetEnv` names variables the controller must not
 * inherit from it (a variant measured without MALLOC_ARENA_MAX).
 */
export function startController(options: {
  dir: string;
  config: unknown;
  kubeconfig: string;
  metricsPort: number;
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
  unsetEnv?: readonly string[];
}): BenchProcess {
  const cli = join(repoRoot(), 'dist', 'controller', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const configPath = join(options.dir, 'controller.json');
  writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: options.kubeconfig, LOG_LEVEL: 'warn', ...options.env };
  for (const name of options.unsetEnv ?? []) delete env[name];
  return BenchProcess.start(
    'controller',
    projectNode(),
    [...(options.nodeFlags ?? []), cli, '--config', configPath, '--metrics-port', String(options.metricsPort), '--metrics-address', '127.0.0.1'],
    { logPath: join(options.dir, 'controller.log'), env },
  );
}
