import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './benchOutput.js';
import { nodeFlagsOfCommand } from './daemonSetFlags.js';

/**
 * How the controller ships, from the "controller" container in
 * manifests/base/controller-deployment.yaml, so the benchmark measures what the Deployment
 * runs: the literal `env` values (those from the Downward API, such as POD_NAME, left out) and
 * the Node flags between `node` and the script in its command.
 */
export function controllerDeployment(): { env: Record<string, string>; nodeFlags: string[] } {
  const path = join(repoRoot(), 'manifests', 'base', 'controller-deployment.yaml');
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    const manifest = doc.toJS() as {
      kind?: string;
      spec?: { template?: { spec?: { containers?: Array<{ name?: string; command?: unknown; env?: Array<{ name?: string; value?: unknown }> }> } } };
    };
    if (manifest?.kind !== 'Deployment') continue;
    const container = manifest.spec?.template?.spec?.containers?.find((c) => c.name === 'controller');
    const nodeFlags = nodeFlagsOfCommand(container?.command);
    if (!container || !nodeFlags) break;
    const env: Record<string, string> = {};
    for (const entry of container.env ?? []) if (entry.name && typeof entry.value === 'string') env[entry.name] = entry.value;
    return { env, nodeFlags };
  }
  throw new Error(`${path}: no Deployment whose "controller" container command is ["node", ...flags, "<script>.js"]`);
}
