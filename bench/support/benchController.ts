import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectNode } from './agentProcess.js';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/** Starts `dist/controller/cli.js` with `config` (JSON) against `kubeconfig`, metrics on loopback. */
export function startController(options: {
  dir: string;
  config: unknown;
  kubeconfig: string;
  metricsPort: number;
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
}): BenchProcess {
  const cli = join(repoRoot(), 'dist', 'controller', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const configPath = join(options.dir, 'controller.json');
  writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  return BenchProcess.start(
    'controller',
    projectNode(),
    [...(options.nodeFlags ?? []), cli, '--config', configPath, '--metrics-port', String(options.metricsPort), '--metrics-address', '127.0.0.1'],
    { logPath: join(options.dir, 'controller.log'), env: { ...process.env, KUBECONFIG: options.kubeconfig, LOG_LEVEL: 'warn', ...options.env } },
  );
}
