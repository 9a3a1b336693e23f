import { readdirSync, readFileSync } from 'node:fs';

/**
 * Resource use of a process and everything it started, read from /proc. CPU time of children
 * that have exited and been waited for is in their parent's cutime/cstime; live descendants
 * are added from their own stat, so a plugin process is counted once, alive or reaped.
 */

export interface ProcessStat {
  pid: number;
  ppid: number;
  /** utime + stime, in clock ticks. */
  ownTicks: number;
  /** cutime + cstime: reaped children (and theirs), in clock ticks. */
  reapedChildTicks: number;
}

export interface ProcessMemory {
  /** VmRSS, KiB. */
  rssKiB: number;
  /** VmHWM: peak RSS so far, KiB. */
  peakRssKiB: number;
  /** RssAnon: private memory (heaps, JIT code, stacks), KiB. */
  anonKiB: number;
  /** RssFile: pages of the executable and libraries in memory, KiB. */
  fileKiB: number;
}

/** Memory of the root process; the tree's sum is in treeRssKiB. */
export interface TreeUsage extends ProcessMemory {
  /** Sum of VmRSS over the root and its live descendants, KiB. */
  treeRssKiB: number;
  /** CPU time of the root, its live descendants and every reaped one, seconds. */
  cpuSeconds: number;
  /** Live descendants at the time of the sample. */
  descendants: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so fields are read after the last ')'. */
export function parseStat(text: string): ProcessStat {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  // Fields after the name start at field 3 (state); utime is field 14.
  const fields = text.slice(close + 2).trim().split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  if (close < 0 || !Number.isFinite(pid) || fields.length < 17) throw new Error(`unexpected /proc stat line: ${text.slice(0, 80)}`);
  return { pid, ppid: field(4), ownTicks: field(14) + field(15), reapedChildTicks: field(16) + field(17) };
}

/** Memory figures from /proc/<pid>/status; undefined for a zombie or a process gone. */
export function readMemory(pid: number): ProcessMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const rssKiB = kib('VmRSS');
  const peakRssKiB = kib('VmHWM');
  const anonKiB = kib('RssAnon');
  const fileKiB = kib('RssFile');
  if (rssKiB === undefined || peakRssKiB === undefined || anonKiB === undefined || fileKiB === undefined) return undefined;
  return { rssKiB, peakRssKiB, anonKiB, fileKiB };
}

function readAllStats(): Map<number, ProcessStat> {
  const stats = new Map<number, ProcessStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      stats.set(stat.pid, stat);
    } catch {
      // The process exited between readdir and read.
    }
  }
  return stats;
}

/** One sample of `rootPid`'s tree; undefined once the root is gone. */
export function sampleTree(rootPid: number, ticksPerSecond: number): TreeUsage | undefined {
  const stats = readAllStats();
  const root = stats.get(rootPid);
  const memory = readMemory(rootPid);
  if (!root || !memory) return undefined;
  const children = new Map<number, number[]>();
  for (const stat of stats.values()) {
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  let ticks = root.ownTicks + root.reapedChildTicks;
  let treeRssKiB = memory.rssKiB;
  let descendants = 0;
  const pending = [...(children.get(rootPid) ?? [])];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    const stat = stats.get(pid);
    if (!stat) continue;
    descendants++;
    ticks += stat.ownTicks + stat.reapedChildTicks;
    treeRssKiB += readMemory(pid)?.rssKiB ?? 0;
    pending.push(...(children.get(pid) ?? []));
  }
  return { ...memory, treeRssKiB, cpuSeconds: ticks / ticksPerSecond, descendants };
}
