import { join } from 'node:path';
import type { ProbesConfig } from '../config/schema.js';
import { formatPercent, percentOf, round } from './figureFormat.js';
import { type Probe, type ProbeResult, result } from './probe.js';
import { type NodeRoots, ProcFileError, parseCount, parseLoadAvg, readErrorVerdict, readProcFile } from './procFiles.js';
import { probeReasons } from '../../common/contract.js';

const reasons = probeReasons.pid;

/**
 * PID pressure: every thread takes a PID, so the tasks that exist (the total of /proc/loadavg's
 * running/total field) are measured against both kernel.pid_max and kernel.threads-max;
 * whichever is closer to exhaustion decides.
 */
export class PidProbe implements Probe {
  readonly name = 'pid';
  readonly intervalMs: number;

  constructor(
    private readonly config: ProbesConfig['pid'],
    private readonly roots: NodeRoots,
  ) {
    this.intervalMs = config.intervalSeconds * 1000;
  }

  private async readLimit(signal: AbortSignal, name: 'pid_max' | 'threads-max'): Promise<number> {
    const file = join(this.roots.procRoot, 'sys', 'kernel', name);
    const limit = parseCount((await readProcFile(file, signal)).trim(), file, `kernel.${name}`);
    if (limit === 0) throw new ProcFileError(file, `kernel.${name} is 0`);
    return limit;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    try {
      const loadFile = join(this.roots.procRoot, 'loadavg');
      const { tasks, running } = parseLoadAvg(await readProcFile(loadFile, signal), loadFile);
      const pidMax = await this.readLimit(signal, 'pid_max');
      const threadsMax = await this.readLimit(signal, 'threads-max');
      const pidUsed = percentOf(tasks, pidMax);
      const threadsUsed = percentOf(tasks, threadsMax);
      const { usedPercent } = this.config;
      const high = Math.max(pidUsed, threadsUsed) > usedPercent;
      const message =
        `${tasks} tasks in use: ${formatPercent(pidUsed)} of kernel.pid_max ${pidMax}, ` +
        `${formatPercent(threadsUsed)} of kernel.threads-max ${threadsMax} (threshold ${usedPercent}%)`;
      return result(
        this.name,
        startedAt,
        { healthy: !high, reason: high ? reasons.high : reasons.normal, message },
        {
          tasks,
          running,
          pidMax,
          threadsMax,
          pidUsedPercent: round(pidUsed),
          threadsUsedPercent: round(threadsUsed),
        },
      );
    } catch (err) {
      if (err instanceof ProcFileError) return result(this.name, startedAt, readErrorVerdict(err), { file: err.file });
      throw err;
    }
  }
}
