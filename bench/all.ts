import { main as agentMemory } from './agentMemory.js';
import { main as apiWriteCost } from './apiWriteCost.js';
import { main as controllerScale } from './controllerScale.js';
import { main as detectionLatency } from './detectionLatency.js';
import { main as doctorScale } from './doctorScale.js';
import { main as endpointSoak } from './endpointSoak.js';
import { main as fleetPageScale } from './fleetPageScale.js';
import { main as footprint } from './footprint.js';
import { main as kmsgFlood } from './kmsgFlood.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import { BenchUsageError, type BenchOptions } from './support/benchOptions.js';

/**
 * Every benchmark in sequence with the same flags (`npm run bench -- --quick`), or only those
 * named (`npm run bench -- endpointSoak`). One that fails is reported and the others still
 * run; the exit code says whether all of them finished.
 */
const benchmarks: Array<[string, (options: BenchOptions) => Promise<void>]> = [
  ['footprint', footprint],
  ['agentMemory', agentMemory],
  ['detectionLatency', detectionLatency],
  ['apiWriteCost', apiWriteCost],
  ['controllerScale', controllerScale],
  ['doctorScale', doctorScale],
  ['fleetPageScale', fleetPageScale],
  ['endpointSoak', endpointSoak],
  ['kmsgFlood', kmsgFlood],
];

async function main(options: BenchOptions): Promise<void> {
  const unknown = options.names.filter((name) => !benchmarks.some(([known]) => known === name));
  if (unknown.length > 0) {
    throw new BenchUsageError(`no benchmark named ${unknown.join(', ')}; the benchmarks are ${benchmarks.map(([name]) => name).join(', ')}`);
  }
  const selected = options.names.length === 0 ? benchmarks : benchmarks.filter(([name]) => options.names.includes(name));
  const failed: string[] = [];
  for (const [name, run] of selected) {
    process.stdout.write(`\n=== ${name} ===\n`);
    try {
      await run(options);
    } catch (err) {
      failed.push(name);
      process.stderr.write(`${name} failed: ${(err as Error).stack ?? String(err)}\n`);
    }
  }
  if (failed.length > 0) throw new Error(`${failed.length} of ${selected.length} benchmarks failed: ${failed.join(', ')}`);
  process.stdout.write(`\n${selected.length === 1 ? 'the benchmark' : `all ${selected.length} benchmarks`} finished; results in bench/results/\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('bench', main);
