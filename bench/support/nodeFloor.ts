import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { projectNode } from './agentProcess.js';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/**
 * Node's own floor for the agent: a process that loads the Node builtins the agent loads at
 * start, and runs none of the agent's code. Measured beside NPD in the same run, it shows how
 * much of a ratio to NPD is the runtime's, before a line of ours runs.
 */

/** Static imports and `createRequire(...)('node:x')` of compiled ES modules; `import()` is lazy and left out. */
const STATIC_IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|createRequire\([^)]*\)\(\s*'(node:[^']+)'\s*\)/g;

/** The `node:` builtins that `entry` (a compiled .js file) and the modules it imports statically load. */
export function builtinsLoadedBy(entry: string): string[] {
  const builtins = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const spec = match[1] ?? match[2] ?? match[3] ?? '';
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (spec.startsWith('node:')) builtins.add(spec);
    }
  };
  visit(entry);
  return [...builtins].sort();
}

/** The agent's builtins, loaded with require() (as common/nodeHttp.ts loads node:http), then idle. */
export function startNodeFloor(options: { dir: string; nodeFlags: string[] }): { process: BenchProcess; builtins: string[] } {
  const builtins = builtinsLoadedBy(join(repoRoot(), 'dist', 'agent', 'cli.js'));
  const script = `for (const m of ${JSON.stringify(builtins)}) require(m); setInterval(() => {}, 1 << 30);`;
  const process = BenchProcess.start('node-floor', projectNode(), [...options.nodeFlags, '-e', script], { logPath: join(options.dir, 'node-floor.log') });
  return { process, builtins };
}
