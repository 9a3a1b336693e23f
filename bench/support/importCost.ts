import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

/**
 * What each dependency adds to a fresh Node process when imported in the agent's order: one
 * child process imports them one after another and reads RssAnon/RssFile after each (after a
 * full GC), so a row is that step's marginal cost given everything above it.
 */

export interface ImportStep {
  step: string;
  anonMiB: number;
  fileMiB: number;
  addedAnonMiB: number;
  addedFileMiB: number;
}

const childScript = `
import { readFileSync } from 'node:fs';
const read = () => {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp('^' + k + ':\\\\s+(\\\\d+)', 'm').exec(s)[1]);
  return { anon: kib('RssAnon') / 1024, file: kib('RssFile') / 1024 };
};
const steps = JSON.parse(process.argv[1]);
globalThis.gc();
const rows = [{ step: 'node (bare)', ...read() }];
for (const [step, url] of steps) {
  await import(url);
  globalThis.gc();
  rows.push({ step, ...read() });
}
process.stdout.write(JSON.stringify(rows));
`;

export function measureImportCost(node: string, nodeFlags: string[], steps: Array<[string, string]>): ImportStep[] {
  const out = execFileSync(node, [...nodeFlags, '--expose-gc', '--input-type=module', '-e', childScript, JSON.stringify(steps)], { encoding: 'utf8' });
  const rows = JSON.parse(out) as Array<{ step: string; anon: number; file: number }>;
  const round = (n: number) => Number(n.toFixed(1));
  return rows.map((row, i) => {
    const before = rows[i - 1] ?? { anon: 0, file: 0 };
    return { step: row.step, anonMiB: round(row.anon), fileMiB: round(row.file), addedAnonMiB: round(row.anon - before.anon), addedFileMiB: round(row.file - before.file) };
  });
}

/**
 * What the running agent imports, in its order: its one runtime package, then its own modules;
 * last, two that it loads only on demand (ws, on the first /stream client) or only in its
 * short-lived config-check child (yaml and zod), to show what keeping them out saves.
 */
export function agentImportSteps(repoRoot: string): Array<[string, string]> {
  const dist = (path: string) => pathToFileURL(join(repoRoot, 'dist', path)).href;
  return [
    ['dns-packet', import.meta.resolve('dns-packet')],
    ['agent modules (standalone)', dist('agent/agent.js')],
    ['probe registry', dist('agent/probes/registry.js')],
    ['in-cluster wiring (publisher, kube client)', dist('agent/inCluster.js')],
    ['ws (only on the first /stream client)', import.meta.resolve('ws')],
    ['yaml (config-check child only)', import.meta.resolve('yaml')],
    ['zod (config-check child only)', import.meta.resolve('zod')],
  ];
}
