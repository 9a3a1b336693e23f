import { parseArgs } from 'node:util';

/**
 * Flags every benchmark accepts, so `npm run bench -- --quick` can pass the same list to each.
 * A benchmark uses the ones that concern it.
 */
export interface BenchOptions {
  /** Shorter runs and fewer trials, for a smoke check of the benchmark itself. */
  quick: boolean;
  /** Measurement length in seconds, when given (footprint; controllerScale's steady window; kmsgFlood's flood). */
  durationSeconds?: number;
  /** Trials per measurement, when given (detection latency). */
  trials?: number;
  /** Node counts, when given (controller scale). */
  nodes?: number[];
  /** Benchmarks to run, by name (`npm run bench -- endpointSoak`); empty: all (all.ts). */
  names: string[];
}

export const benchUsage = `Usage: npm run bench -- [NAME...] [flags]   (NAMEs: run only these benchmarks; default all)
Flags (each benchmark uses those that concern it):
  --quick            short runs, few trials: checks that the benchmark works, figures are rough
  --duration D       footprint run length: 600, 90s, 10m (default 10m; 60s with --quick);
                     controllerScale's steady window under churn (default 2m; 20s with --quick);
                     kmsgFlood's flood (default 60s; 15s with --quick)
  --trials N         detection-latency trials per fault, controllerScale decision trials (default 20; 5 with --quick)
  --nodes N[,N...]   controller-scale node counts (default 1000,5000,10000; 200 with --quick)`;

export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

/** `90`, `90s`, `10m`, `1h` -> seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  if (!match) throw new BenchUsageError(`--duration: "${text}" is not a duration; use e.g. 60s, 10m or 600`);
  const seconds = Number(match[1]) * ({ s: 1, m: 60, h: 3600 }[match[2] ?? 's'] as number);
  if (seconds < 10) throw new BenchUsageError(`--duration: ${text} is too short; the probes run every 10 s, give at least 10s`);
  return seconds;
}

function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new BenchUsageError(`${flag}: "${text}" is not a positive integer`);
  return n;
}

export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        quick: { type: 'boolean', default: false },
        duration: { type: 'string' },
        trials: { type: 'string' },
        nodes: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new BenchUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  return {
    names: positionals,
    quick: values.quick,
    durationSeconds: values.duration === undefined ? undefined : parseDuration(values.duration),
    trials: values.trials === undefined ? undefined : positiveInt('--trials', values.trials),
    nodes: values.nodes === undefined ? undefined : values.nodes.split(',').map((n) => positiveInt('--nodes', n)),
  };
}
