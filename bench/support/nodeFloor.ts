import { readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { projectNode } from './agentProcess.js';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/**
 * Node's own floor for the agent: a process that loads the Node builtins the agent loads, the
 * way it loads them, and runs none of the agent's code. Measured beside NPD in the same run, it
 * shows how much of a ratio to NPD is the runtime's, before a line of ours runs.
 */

export interface Builtin {
  name: string;
  /** An ESM import evaluates the module's whole namespace (lazy getters included); require() does not. */
  how: 'import' | 'require';
}

/** Static imports and `createRequire(...)('node:x')` of compiled ES modules; `import()` is lazy and left out. */
const STATIC_IMPORT = /(?:^|\n)[ \t]*(?:import|export)\b[^'";]*?from\s+(['"])([^'"]+)\1|(?:^|\n)[ \t]*import\s+(['"])([^'"]+)\3|createRequire\([^;]*?\)\(\s*(['"])([^'"]+)\5\s*\)/g;
const builtins = new Set(builtinModules);

/** The builtins that `entry` (a compiled .js file) and the modules it imports statically load, and how. */
export function builtinsLoadedBy(entry: string): Builtin[] {
  const found = new Map<string, Builtin['how']>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const spec = match[2] ?? match[4] ?? match[6] ?? '';
      if (spec.startsWith('.')) {
        visit(resolve(dirname(file), spec));
        continue;
      }
      const name = spec.replace(/^node:/, '');
      if (!builtins.has(name)) continue;
      // An ESM import anywhere decides: it evaluates the whole namespace, whatever else requires it.
      if (found.get(`node:${name}`) !== 'import') found.set(`node:${name}`, match[6] === undefined ? 'import' : 'require');
    }
  };
  visit(entry);
  return [...found].map(([name, how]) => ({ name, how })).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * What Node loads on its own for what every agent does: net.Server#listen loads node:cluster,
 * and a connection to a host name loads node:dns.
 */
const LOADED_BY_NODE: Builtin[] = [
  { name: 'node:cluster', how: 'require' },
  { name: 'node:dns', how: 'require' },
];

/** The agent's builtins, each loaded as the agent loads it, then idle. */
export function startNodeFloor(options: { dir: string; nodeFlags: string[] }): { process: BenchProcess; builtins: Builtin[] } {
  const agentBuiltins = builtinsLoadedBy(join(repoRoot(), 'dist', 'agent', 'cli.js'));
  const all = [...agentBuiltins, ...LOADED_BY_NODE.filter((b) => !agentBuiltins.some((a) => a.name === b.name))];
  const script = join(options.dir, 'node-floor.mjs');
  writeFileSync(
    script,
    [
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      ...all.map((b, i) => (b.how === 'import' ? `import * as m${i} from '${b.name}';` : `require('${b.name}');`)),
      'setInterval(() => {}, 1 << 30);',
    ].join('\n'),
  );
  const process = BenchProcess.start('node-floor', projectNode(), [...options.nodeFlags, script], { logPath: join(options.dir, 'node-floor.log') });
  return { process, builtins: all };
}
