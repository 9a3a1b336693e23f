import { main as agentMemory } from './agentMemory.js';
import { main as apiWriteCost } from './apiWriteCost.js';
import { main as controllerScale } from './controllerScale.js';
import { main as detectionLatency } from './detectionLatency.js';
import { main as footprint } from './footprint.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';

/**
 * Every benchmark in sequence with the same flags (`npm run bench -- --quick`). One that fails
 * is reported and the others still run; the exit code says whether all of them finished.
 */
const benchmarks: Array<[string, (options: BenchOptions) => Promise<void>]> = [
  ['footprint', footprint],
  ['agentMemory', agentMemory],
  ['detectionLatency', detectionLatency],
  ['apiWriteCost', apiWriteCost],
  ['controllerScale', controllerScale],
];

async function main(options: BenchOptions): Promise<void> {
  const failed: string[] = [];
  for (const [name, run] of benchmarks) {
    process.stdout.write(`\n=== ${name} ===\n`);
    try {
      await run(options);
    } catch (err) {
      failed.push(name);
      process.stderr.write(`${name} failed: ${(err as Error).stack ?? String(err)}\n`);
    }
  }
  if (failed.length > 0) throw new Error(`${failed.length} of ${benchmarks.length} benchmarks failed: ${failed.join(', ')}`);
  process.stdout.write(`\nall ${benchmarks.length} benchmarks finished; results in bench/results/\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('bench', main);
