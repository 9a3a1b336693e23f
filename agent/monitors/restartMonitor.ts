import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { ConditionRule } from '../conditions/conditionEngine.js';
import { engineReasons } from '../../common/contract.js';
import { ProcFileError, readProcFile } from '../probes/procFiles.js';
import type { ProbeResult } from '../probes/probe.js';
import type { Monitor, MonitorSink } from './monitor.js';

/** One process to follow, and the NPD condition its restarts set. */
export interface RestartWatch {
  /** FrequentKubeletRestart, FrequentContainerdRestart. */
  condition: string;
  /** The process name as the kernel keeps it (/proc/<pid>/comm, at most 15 characters). */
  process: string;
}

export interface RestartOptions {
  procRoot: string;
  intervalMs: number;
  /** NPD's log-counter window (20 min) and count (5). */
  windowMs: number;
  count: number;
  /** While a watched process is not running at all, /proc is rescanned this often, not every interval. */
  rescanMs: number;
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat starttime: 100 on every architecture Kubernetes runs on. */
const ticksPerSecond = 100;

interface Followed {
  watch: RestartWatch;
  /** The instances running now: pid -> starttime (ticks since boot). */
  running: Map<number, number>;
  /** Start times (seconds since boot) of the instances seen, newest last. */
  starts: number[];
  nextRescanAt: number;
}

/** The start time of a process from its stat line (the comm in parentheses may hold spaces and parentheses). */
export function startTicks(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  return Number.isInteger(ticks) ? ticks : undefined;
}

/**
 * NPD's FrequentKubeletRestart and FrequentContainerdRestart without the systemd journal and
 * without spawning: each interval a read of the known processes' /proc/<pid>/stat (alive,
 * and the same instance: a reused PID has another start time), a scan of /proc only when one
 * is gone; a new instance is a start. `count` starts within `windowMs` is the problem, fewer
 * clears it. Restarts while the agent was down are not seen (their processes are gone).
 */
export class RestartMonitor implements Monitor {
  readonly name = 'restarts';
  readonly rules: ConditionRule[];
  private readonly followed: Followed[];
  private timer: NodeJS.Timeout | undefined;
  private sink: MonitorSink | undefined;
  private readonly controller = new AbortController();

  constructor(
    watches: readonly RestartWatch[],
    private readonly options: RestartOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.followed = watches.map((watch) => ({ watch, running: new Map(), starts: [], nextRescanAt: 0 }));
    this.rules = watches.map((watch) => ({
      type: watch.condition,
      probe: `${this.name}/${watch.condition}`,
      failureThreshold: 1,
      recoveryThreshold: 1,
      initial: { reason: `No${watch.condition}`, message: `${watch.process} is functioning properly` },
    }));
  }

  start(sink: MonitorSink): void {
    this.sink = sink;
    const tick = () => {
      void this.sample().then((results) => {
        for (const result of results) this.sink?.emit(result);
        if (!this.controller.signal.aborted) this.timer = setTimeout(tick, this.options.intervalMs);
      });
    };
    tick();
  }

  stop(): void {
    this.controller.abort();
    clearTimeout(this.timer);
  }

  /** One look at every watched process: a result per condition. */
  async sample(): Promise<ProbeResult[]> {
    const at = this.now();
    const signal = this.controller.signal;
    let uptime: number;
    try {
      uptime = Number((await readProcFile(join(this.options.procRoot, 'uptime'), signal)).split(/\s+/)[0]);
    } catch (err) {
      if (!(err instanceof ProcFileError)) return [];
      return this.followed.map((f) => this.result(f, at, { healthy: false, reason: engineReasons.probeReadError, message: `cannot use ${err.file}: ${err.detail}; check procRoot` }));
    }
    const results: ProbeResult[] = [];
    // One walk of /proc serves every watched name that needs it in this sample.
    let scanned: Promise<Map<string, Map<number, number>>> | undefined;
    const scan = () => (scanned ??= this.scan(signal));
    for (const followed of this.followed) {
      try {
        results.push(await this.look(followed, at, uptime, scan, signal));
      } catch (err) {
        if (signal.aborted) return [];
        const detail = err instanceof ProcFileError ? `cannot use ${err.file}: ${err.detail}` : (err as Error).message;
        results.push(this.result(followed, at, { healthy: false, reason: engineReasons.probeReadError, message: `${detail}; check procRoot` }));
      }
    }
    return results;
  }

  private async look(f: Followed, at: number, uptime: number, scan: () => Promise<Map<string, Map<number, number>>>, signal: AbortSignal): Promise<ProbeResult> {
    let gone = f.running.size === 0 && at >= f.nextRescanAt;
    for (const [pid, ticks] of f.running) {
      const stat = await readFile(join(this.options.procRoot, String(pid), 'stat'), { encoding: 'utf8', signal }).catch(() => undefined);
      if (stat === undefined || startTicks(stat) !== ticks) {
        f.running.delete(pid);
        gone = true;
      }
    }
    if (gone) {
      for (const [pid, ticks] of (await scan()).get(f.watch.process) ?? []) {
        if (!f.running.has(pid)) f.starts.push(ticks / ticksPerSecond);
        f.running.set(pid, ticks);
      }
      if (f.running.size === 0) f.nextRescanAt = at + this.options.rescanMs;
    }
    const windowStart = uptime - this.options.windowMs / 1000;
    f.starts = f.starts.filter((start) => start >= windowStart);
    const { process, condition } = f.watch;
    const window = `${Math.round(this.options.windowMs / 60_000)} min`;
    const starts = f.starts.length;
    const figures = { process, starts, windowSeconds: this.options.windowMs / 1000, running: [...f.running.keys()] };
    if (starts >= this.options.count) {
      return this.result(f, at, { healthy: false, reason: condition, message: `${process} started ${starts} times in the last ${window} (at least ${this.options.count} is frequent); pids now: ${[...f.running.keys()].join(', ') || 'none'}` }, figures);
    }
    const state = f.running.size > 0 ? `running as pid ${[...f.running.keys()].join(', ')}` : 'not running';
    return this.result(f, at, { healthy: true, reason: `No${condition}`, message: `${process} is ${state}; ${starts} start(s) seen in the last ${window} (${this.options.count} is frequent)` }, figures);
  }

  /** The processes with a watched name now: name -> pid -> starttime. */
  private async scan(signal: AbortSignal): Promise<Map<string, Map<number, number>>> {
    const found = new Map(this.followed.map((f) => [f.watch.process, new Map<number, number>()]));
    const entries = await readdir(this.options.procRoot).catch((err: Error) => {
      throw new ProcFileError(this.options.procRoot, err.message);
    });
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const dir = join(this.options.procRoot, entry);
      const comm = await readFile(join(dir, 'comm'), { encoding: 'utf8', signal }).catch(() => undefined);
      const byPid = comm === undefined ? undefined : found.get(comm.trimEnd());
      if (!byPid) continue;
      const stat = await readFile(join(dir, 'stat'), { encoding: 'utf8', signal }).catch(() => undefined);
      const ticks = stat === undefined ? undefined : startTicks(stat);
      if (ticks !== undefined) byPid.set(Number(entry), ticks);
    }
    this.log.debug({ found: Object.fromEntries([...found].map(([name, pids]) => [name, [...pids.keys()]])) }, 'scanned /proc for the watched processes');
    return found;
  }

  private result(f: Followed, at: number, verdict: Pick<ProbeResult, 'healthy' | 'reason' | 'message'>, figures: ProbeResult['figures'] = {}): ProbeResult {
    return { probe: `${this.name}/${f.watch.condition}`, at, durationMs: this.now() - at, ...verdict, figures };
  }
}
