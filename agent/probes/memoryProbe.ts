import { join } from 'node:path';
import type { ProbesConfig } from '../config/schema.js';
import { formatPercent, percentOf, round } from './figureFormat.js';
import { type Probe, type ProbeResult, result } from './probe.js';
import { type NodeRoots, ProcFileError, parseCount, readErrorVerdict, readProcFile } from './procFiles.js';
import { psiFigures, readPsi } from './psi.js';
import { probeReasons } from '../../common/contract.js';

const reasons = probeReasons.memory;

/** The `Name:  1234 kB` fields of /proc/meminfo that this probe needs, in KiB. */
function parseMeminfo(text: string, file: string): { totalKiB: number; availableKiB: number } {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(\w+):\s*(\S+)/.exec(line);
    if (match?.[1] && match[2] !== undefined) fields.set(match[1], match[2]);
  }
  const totalKiB = parseCount(fields.get('MemTotal'), file, 'MemTotal');
  if (totalKiB === 0) throw new ProcFileError(file, 'MemTotal is 0');
  return { totalKiB, availableKiB: parseCount(fields.get('MemAvailable'), file, 'MemAvailable') };
}

/**
 * Memory pressure: PSI memory stall (some and full) and MemAvailable, both as a share of
 * MemTotal and in MiB, warned about before the kubelet's default eviction at memory.available<100Mi.
 */
export class MemoryProbe implements Probe {
  readonly name = 'memory';
  readonly intervalMs: number;

  constructor(
    private readonly config: ProbesConfig['memory'],
    private readonly roots: NodeRoots,
  ) {
    this.intervalMs = config.intervalSeconds * 1000;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    try {
      const psi = await readPsi(this.roots.procRoot, 'memory', signal);
      const meminfoFile = join(this.roots.procRoot, 'meminfo');
      const mem = parseMeminfo(await readProcFile(meminfoFile, signal), meminfoFile);
      const availableMiB = mem.availableKiB / 1024;
      const totalMiB = mem.totalKiB / 1024;
      const availablePercent = percentOf(mem.availableKiB, mem.totalKiB);
      const cfg = this.config;

      const lowMemory: string[] = [];
      if (availablePercent < cfg.availablePercent) {
        lowMemory.push(`MemAvailable ${formatPercent(availablePercent)} of ${Math.round(totalMiB)} MiB is below ${cfg.availablePercent}%`);
      }
      if (availableMiB < cfg.availableMiB) {
        lowMemory.push(
          `MemAvailable ${Math.round(availableMiB)} MiB is below ${cfg.availableMiB} MiB (the kubelet evicts pods at its default memory.available<100Mi)`,
        );
      }
      const stalls: string[] = [];
      if (psi && psi.some.avg10 > cfg.someAvg10Percent) {
        stalls.push(`memory some avg10=${formatPercent(psi.some.avg10)} is over ${cfg.someAvg10Percent}%`);
      }
      if (psi?.full && psi.full.avg10 > cfg.fullAvg10Percent) {
        stalls.push(`memory full avg10=${formatPercent(psi.full.avg10)} is over ${cfg.fullAvg10Percent}%`);
      }

      const summary = [
        `MemAvailable ${Math.round(availableMiB)} MiB (${formatPercent(availablePercent)} of ${Math.round(totalMiB)} MiB)`,
        psi
          ? `memory some avg10=${formatPercent(psi.some.avg10)}${psi.full ? ` full avg10=${formatPercent(psi.full.avg10)}` : ''}`
          : 'no PSI on this kernel',
      ].join(', ');
      // Running out of memory is closer to eviction than stalling on it, so it names the problem.
      const reason = lowMemory.length > 0 ? reasons.availableLow : stalls.length > 0 ? reasons.pressureHigh : reasons.normal;
      const problems = [...lowMemory, ...stalls];
      return result(
        this.name,
        startedAt,
        { healthy: problems.length === 0, reason, message: problems.length > 0 ? problems.join('; ') : summary },
        {
          psi: psi ? psiFigures(psi) : null,
          totalMiB: round(totalMiB, 1),
          availableMiB: round(availableMiB, 1),
          availablePercent: round(availablePercent),
        },
      );
    } catch (err) {
      if (err instanceof ProcFileError) return result(this.name, startedAt, readErrorVerdict(err), { file: err.file });
      throw err;
    }
  }
}
