import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/** The Node the project runs on (node_modules' Node 24), not whichever `node` started the bench. */
export function projectNode(): string {
  const local = join(repoRoot(), 'node_modules', '.bin', 'node');
  return existsSync(local) ? local : process.execPath;
}

export function nodeVersion(node: string): string {
  return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
}

/** Starts `dist/agent/cli.js` with `config` (written as JSON, which the YAML loader reads) and V8 `nodeFlags`. */
export function startAgent(options: {
  name: string;
  dir: string;
  config: unknown;
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
}): BenchProcess {
  const cli = join(repoRoot(), 'dist', 'agent', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const configPath = join(options.dir, `${options.name}.json`);
  writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  return BenchProcess.start(options.name, projectNode(), [...(options.nodeFlags ?? []), cli, '--config', configPath], {
    logPath: join(options.dir, `${options.name}.log`),
    env: { ...process.env, ...options.env },
  });
}

/** Polls `url` until it answers 200 or `timeoutMs` passes. */
export async function waitForOk(url: string, timeoutMs: number, process?: BenchProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (process && !process.running) throw new Error(`${process.name} exited while starting:\n${process.logTail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
