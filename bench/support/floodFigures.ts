import { median } from './stats.js';

/** The kmsg flood benchmark's arithmetic, apart from the machine so it can be tested. */

export interface UsageSample {
  /** Seconds since the agent was started. */
  at: number;
  rssKiB: number;
  anonKiB: number;
  /** CPU seconds of the agent since it started. */
  cpuSeconds: number;
  /** VmHWM, KiB, when sampled. */
  peakRssKiB?: number;
}

export interface PhaseFigures {
  samples: number;
  /** Median over the phase, MiB. */
  rssMiB: number;
  anonMiB: number;
  /** Highest sample of the phase, MiB. */
  peakRssMiB: number;
  /** CPU time over wall time of the phase, in cores. */
  cores: number;
}

const MiB = 1024;
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/** Figures of the samples taken in [from, to) seconds. */
export function phaseFigures(samples: readonly UsageSample[], from: number, to: number): PhaseFigures {
  const inPhase = samples.filter((s) => s.at >= from && s.at < to);
  const first = inPhase[0];
  const last = inPhase[inPhase.length - 1];
  if (!first || !last) throw new Error(`no samples between ${from} and ${to} s`);
  const span = last.at - first.at;
  return {
    samples: inPhase.length,
    rssMiB: round(median(inPhase.map((s) => s.rssKiB)) / MiB),
    anonMiB: round(median(inPhase.map((s) => s.anonKiB)) / MiB),
    peakRssMiB: round(Math.max(...inPhase.map((s) => s.rssKiB)) / MiB),
    cores: span > 0 ? round((last.cpuSeconds - first.cpuSeconds) / span, 3) : Number.NaN,
  };
}

/**
 * Whether RSS stopped growing with volume: the median of the flood's last third against its
 * middle third. An agent that kept something per line would keep growing through the flood;
 * one that is bounded levels off once its buffers and heap have grown to the rate.
 */
export function floodGrowth(samples: readonly UsageSample[], floodFrom: number, floodTo: number, allowedMiB: number) {
  const third = (floodTo - floodFrom) / 3;
  const middle = phaseFigures(samples, floodFrom + third, floodFrom + 2 * third).rssMiB;
  const end = phaseFigures(samples, floodFrom + 2 * third, floodTo).rssMiB;
  const growthMiB = round(end - middle);
  return { middleMiB: middle, endMiB: end, growthMiB, allowedMiB, bounded: growthMiB <= allowedMiB };
}

/** The agent's own count of records lost to ring-buffer overwrites: the highest lostTotal its log said. */
export function lostTotalFromAgentLog(log: string): number {
  let lost = 0;
  for (const line of log.split('\n')) {
    if (!line.includes('"lostTotal"')) continue;
    try {
      const entry = JSON.parse(line) as { lostTotal?: unknown };
      if (typeof entry.lostTotal === 'number' && entry.lostTotal > lost) lost = entry.lostTotal;
    } catch {
      // A line cut off by the agent's exit: not a report.
    }
  }
  return lost;
}

/** A sample's value in Prometheus text exposition: `name{labels}` with every given label equal, summed; 0 if none. */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map<string, string>();
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(pair[1] as string, pair[2] as string);
    if (Object.entries(labels).every(([key, value]) => have.get(key) === value)) total += Number(match[4]);
  }
  return total;
}
