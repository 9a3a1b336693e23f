import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { ProbesConfig } from '../config/schema.js';
import { formatPercent, percentOf, round } from './figureFormat.js';
import { type Figures, type Probe, type ProbeResult, type Verdict, result } from './probe.js';
import { type NodeRoots, ProcFileError, parseCount, parseLoadAvg, readErrorVerdict, readProcFile } from './procFiles.js';
import { type Psi, psiFigures, readPsi } from './psi.js';
import { probeReasons } from '../../common/contract.js';

const reasons = probeReasons.cpu;

/** Cumulative CPU time from the aggregate `cpu` line of /proc/stat, in clock ticks. */
interface CpuTimes {
  busy: number;
  total: number;
}

interface ProcStat {
  times: CpuTimes;
  /** Number of `cpuN` lines; 0 when the file lists none. */
  cores: number;
}

function parseProcStat(text: string, file: string): ProcStat {
  const lines = text.split('\n');
  const aggregate = lines.find((line) => /^cpu\s/.test(line));
  if (!aggregate) throw new ProcFileError(file, 'no aggregate "cpu ..." line');
  // user nice system idle iowait irq softirq steal; guest and guest_nice are already in user/nice.
  const fields = aggregate.trim().split(/\s+/).slice(1, 9);
  if (fields.length < 4) throw new ProcFileError(file, `the "cpu" line has ${fields.length} fields, expected at least 4`);
  const names = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
  const ticks = fields.map((value, i) => parseCount(value, file, `cpu ${names[i]}`));
  const total = ticks.reduce((sum, t) => sum + t, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { times: { busy: total - idle, total }, cores: lines.filter((line) => /^cpu\d+\s/.test(line)).length };
}

/**
 * CPU pressure. Where the kernel has PSI, the share of time runnable tasks waited for a CPU
 * (some avg10) is the verdict. Without PSI it falls back to utilisation between two samples
 * of /proc/stat plus the 1-minute load per core.
 */
export class CpuProbe implements Probe {
  readonly name = 'cpu';
  readonly intervalMs: number;
  private previous: CpuTimes | null = null;

  constructor(
    private readonly config: ProbesConfig['cpu'],
    private readonly roots: NodeRoots,
  ) {
    this.intervalMs = config.intervalSeconds * 1000;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    try {
      const psi = await readPsi(this.roots.procRoot, 'cpu', signal);
      if (psi) return result(this.name, startedAt, this.psiVerdict(psi), { source: 'psi', psi: psiFigures(psi) });
      const [verdict, figures] = await this.utilisationSample(signal);
      return result(this.name, startedAt, verdict, figures);
    } catch (err) {
      if (err instanceof ProcFileError) return result(this.name, startedAt, readErrorVerdict(err), { file: err.file });
      throw err;
    }
  }

  private psiVerdict(psi: Psi): Verdict {
    const { someAvg10Percent } = this.config;
    const detail = `cpu some avg10=${formatPercent(psi.some.avg10)} (threshold ${someAvg10Percent}%)`;
    return psi.some.avg10 > someAvg10Percent
      ? { healthy: false, reason: reasons.high, message: detail }
      : { healthy: true, reason: reasons.normal, message: detail };
  }

  private async utilisationSample(signal: AbortSignal): Promise<[Verdict, Figures]> {
    const statFile = join(this.roots.procRoot, 'stat');
    const loadFile = join(this.roots.procRoot, 'loadavg');
    const stat = parseProcStat(await readProcFile(statFile, signal), statFile);
    const load = parseLoadAvg(await readProcFile(loadFile, signal), loadFile);
    const cores = stat.cores > 0 ? stat.cores : availableParallelism();

    const previous = this.previous;
    this.previous = stat.times;
    const ticks = previous ? stat.times.total - previous.total : 0;
    const busyTicks = previous ? stat.times.busy - previous.busy : 0;
    // No previous sample, or counters that went backwards (e.g. CPU hot-unplug): no delta yet.
    const utilisation = ticks > 0 && busyTicks >= 0 ? Math.min(100, percentOf(busyTicks, ticks)) : null;
    const loadPerCore = load.load1 / cores;

    const { utilisationPercent, loadPerCore: loadThreshold } = this.config;
    const utilisationText =
      utilisation === null ? 'cpu utilisation pending a second sample' : `cpu utilisation ${formatPercent(utilisation)} (threshold ${utilisationPercent}%)`;
    const loadText = `load1 ${load.load1.toFixed(2)} = ${loadPerCore.toFixed(2)} per core on ${cores} cores (threshold ${loadThreshold})`;
    const message = `${utilisationText}, ${loadText}; no PSI on this kernel`;
    const high = (utilisation !== null && utilisation > utilisationPercent) || loadPerCore > loadThreshold;
    const figures: Figures = {
      source: 'stat',
      baseline: utilisation === null,
      utilisationPercent: utilisation === null ? null : round(utilisation),
      load1: load.load1,
      load5: load.load5,
      load15: load.load15,
      cores,
      loadPerCore: round(loadPerCore),
    };
    return [{ healthy: !high, reason: high ? reasons.high : reasons.normal, message }, figures];
  }
}
