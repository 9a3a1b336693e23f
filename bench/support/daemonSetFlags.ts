import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './benchOutput.js';

/** The words between `node` and the script in a container command such as ["node", "--flag", "/app/x.js"]; undefined for another shape. */
export function nodeFlagsOfCommand(command: unknown): string[] | undefined {
  if (!Array.isArray(command) || command[0] !== 'node') return undefined;
  const script = command.findIndex((word) => typeof word === 'string' && word.endsWith('.js'));
  return script < 1 ? undefined : (command.slice(1, script) as string[]);
}

/**
 * The Node flags the agent ships with: the words between `node` and the script in the agent
 * container's command in manifests/base/agent-daemonset.yaml, so the benchmarks measure what
 * the DaemonSet runs.
 */
export function daemonSetNodeFlags(): string[] {
  const path = join(repoRoot(), 'manifests', 'base', 'agent-daemonset.yaml');
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    const manifest = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Array<{ name?: string; command?: unknown }> } } } };
    if (manifest?.kind !== 'DaemonSet') continue;
    const flags = nodeFlagsOfCommand(manifest.spec?.template?.spec?.containers?.find((c) => c.name === 'agent')?.command);
    if (flags) return flags;
    break;
  }
  throw new Error(`${path}: no DaemonSet whose "agent" container command is ["node", ...flags, "<script>.js"]`);
}
