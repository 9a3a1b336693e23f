import { readFileSync } from 'node:fs';

/**
 * How busy the machine was around a measurement, to print beside its figures: other work on
 * a shared 2-core box disturbs latency and CPU figures, and a point taken under heavy load is
 * worth repeating.
 */

/** /proc/loadavg's 1-, 5- and 15-minute averages. */
export function loadAverages(): [number, number, number] {
  const [one, five, fifteen] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [one ?? Number.NaN, five ?? Number.NaN, fifteen ?? Number.NaN];
}

/** The `cpu` line of /proc/stat: busy and total jiffies over all cores. */
export interface CpuTimes {
  busy: number;
  total: number;
}

export function machineCpuTimes(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** Cores busy on average between two readings (0 to the number of cores), everything on the machine. */
export function busyCoresBetween(before: CpuTimes, after: CpuTimes, cores: number): number {
  const total = after.total - before.total;
  return total > 0 ? ((after.busy - before.busy) / total) * cores : Number.NaN;
}
