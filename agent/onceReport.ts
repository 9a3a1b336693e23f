import type { Probe, ProbeResult } from './probes/probe.js';

/**
 * `--once`: every probe sampled once, as the seed's manual check would. Probes that measure
 * rates need a baseline first; those mark their first result `baseline: true` and get a
 * second sample after `baselineGapMs`.
 */
export async function sampleOnce(
  probes: readonly Probe[],
  sample: (probe: Probe) => Promise<ProbeResult>,
  baselineGapMs = 1000,
): Promise<ProbeResult[]> {
  const first = await Promise.all(probes.map((probe) => sample(probe)));
  if (!first.some((r) => r.figures.baseline === true)) return first;
  await new Promise((resolve) => setTimeout(resolve, baselineGapMs));
  return Promise.all(probes.map((probe, i) => (first[i]?.figures.baseline === true ? sample(probe) : (first[i] as ProbeResult))));
}

/** A table a person reads in a terminal: one row per probe, problems first. */
export function renderTable(results: readonly ProbeResult[]): string {
  const rows = [...results]
    .sort((a, b) => Number(a.healthy) - Number(b.healthy) || a.probe.localeCompare(b.probe))
    .map((r) => [r.probe, r.healthy ? 'OK' : 'PROBLEM', r.reason, `${r.durationMs}ms`, r.message]);
  const header = ['PROBE', 'STATUS', 'REASON', 'TOOK', 'DETAILS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  const problems = results.filter((r) => !r.healthy).length;
  const summary = problems === 0 ? 'no problems found' : `${problems} problem${problems === 1 ? '' : 's'} found`;
  return [line(header), ...rows.map(line), '', summary, ''].join('\n');
}
