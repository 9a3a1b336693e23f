import { execFileSync } from 'node:child_process';
import { sampleTree, type TreeUsage } from './processTree.js';
import { median } from './stats.js';

/** Clock ticks per second for /proc CPU times (USER_HZ; 100 on every common Linux build). */
export function clockTicksPerSecond(): number {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  if (!Number.isInteger(ticks) || ticks <= 0) throw new Error(`getconf CLK_TCK printed no positive integer`);
  return ticks;
}

export interface Sample extends TreeUsage {
  /** Seconds since sampling started. */
  at: number;
}

export interface FootprintFigures {
  samples: number;
  /** Median VmRSS over the second half of the run, MiB. */
  steadyRssMiB: number;
  /** Median RssAnon (private: heaps, JIT code, stacks) over the second half, MiB. */
  steadyAnonMiB: number;
  /** Median RssFile (executable and library pages) over the second half, MiB. */
  steadyFileMiB: number;
  /** VmHWM at the last sample: the process's own peak RSS, MiB. */
  peakRssMiB: number;
  /** Highest sampled RSS of the whole tree (with plugin processes alive at that second), MiB. */
  peakTreeRssMiB: number;
  /** CPU seconds (tree) from the end of warm-up to the end, scaled to one hour. */
  cpuSecondsPerHour: number;
  /** CPU seconds spent during warm-up (start-up and first rounds). */
  warmupCpuSeconds: number;
  totalCpuSeconds: number;
  /** [seconds, RSS MiB] every sample, for plotting. */
  rssSeries: Array<[number, number]>;
}

const MiB = 1024;
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/** Figures from one process's samples; CPU per hour counts only what follows `warmupSeconds`. */
export function footprintFigures(samples: readonly Sample[], warmupSeconds: number): FootprintFigures {
  const last = samples[samples.length - 1];
  if (!last) throw new Error('no samples: the process exited before the first one');
  const secondHalf = samples.filter((s) => s.at >= last.at / 2);
  const warm = samples.find((s) => s.at >= warmupSeconds) ?? last;
  const steadySpan = last.at - warm.at;
  return {
    samples: samples.length,
    steadyRssMiB: round(median(secondHalf.map((s) => s.rssKiB)) / MiB),
    steadyAnonMiB: round(median(secondHalf.map((s) => s.anonKiB)) / MiB),
    steadyFileMiB: round(median(secondHalf.map((s) => s.fileKiB)) / MiB),
    peakRssMiB: round(last.peakRssKiB / MiB),
    peakTreeRssMiB: round(Math.max(...samples.map((s) => s.treeRssKiB)) / MiB),
    cpuSecondsPerHour: steadySpan > 0 ? round(((last.cpuSeconds - warm.cpuSeconds) / steadySpan) * 3600, 2) : Number.NaN,
    warmupCpuSeconds: round(warm.cpuSeconds, 2),
    totalCpuSeconds: round(last.cpuSeconds, 2),
    rssSeries: samples.map((s) => [round(s.at), round(s.rssKiB / MiB)]),
  };
}

/**
 * Samples several process trees once a second, side by side, for `seconds`. Stops early with
 * an error naming the process if one of them exits.
 */
export async function sampleSideBySide(
  pids: Record<string, number>,
  seconds: number,
  ticksPerSecond: number,
  onProgress: (elapsed: number) => void = () => {},
): Promise<Record<string, Sample[]>> {
  const series: Record<string, Sample[]> = Object.fromEntries(Object.keys(pids).map((name) => [name, []]));
  const start = performance.now();
  for (let tick = 0; ; tick++) {
    const at = (performance.now() - start) / 1000;
    for (const [name, pid] of Object.entries(pids)) {
      const usage = sampleTree(pid, ticksPerSecond);
      if (!usage) throw new Error(`${name} (pid ${pid}) exited ${at.toFixed(0)} s into the run; see its log`);
      series[name]?.push({ at, ...usage });
    }
    onProgress(at);
    if (at >= seconds) return series;
    const next = start + (tick + 1) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
  }
}
