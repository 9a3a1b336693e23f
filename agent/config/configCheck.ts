import { loadAgentConfig } from './agentConfig.js';
import { ConfigError } from '../../common/config/configError.js';

/**
 * The child side of isolatedConfigLoader.ts (`nodepulse-agent --check-config-json`): validates
 * the config (file, plus overrides in the environment) and prints the result as one JSON
 * document. The agent's own process then never loads yaml and zod, which would stay resident
 * on every node for its whole life (~13 MiB: bench/agentMemory.ts); a worker thread would keep
 * as much.
 */
export function printCheckedConfig(file: string | undefined): void {
  try {
    process.stdout.write(JSON.stringify({ ok: true, config: loadAgentConfig(file, process.env) }));
  } catch (err) {
    const issues = err instanceof ConfigError ? err.issues : [`(config) ${(err as Error).message}`];
    const source = err instanceof ConfigError ? err.source : (file ?? 'built-in defaults');
    process.stdout.write(JSON.stringify({ ok: false, issues, source }));
  }
}
