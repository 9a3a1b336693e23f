import { pathToFileURL } from 'node:url';
import { BenchUsageError, benchUsage, parseBenchOptions, type BenchOptions } from './benchOptions.js';

/** True when the module at `moduleUrl` is the script node was started with (not imported by all.ts). */
export function isMainModule(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === moduleUrl;
}

/** Runs a benchmark's `main` with the command line's flags; a usage error prints the flags, anything else its stack. */
export function runBenchMain(name: string, main: (options: BenchOptions) => Promise<void>): void {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n\n${benchUsage}\n`);
    process.exitCode = 2;
    return;
  }
  main(options).catch((err: unknown) => {
    const error = err as Error;
    process.stderr.write(`${name}: ${error instanceof BenchUsageError ? error.message : (error?.stack ?? String(err))}\n`);
    process.exitCode = 1;
  });
}
