import { statfs } from 'node:fs/promises';
import type { ProbesConfig } from '../config/schema.js';
import { formatPercent, percentOf, round } from './figureFormat.js';
import { type Figures, type Probe, type ProbeResult, result } from './probe.js';
import { probeReasons } from '../../common/contract.js';

const reasons = probeReasons.diskSpace;

const GiB = 1024 ** 3;

interface Usage {
  path: string;
  usedPercent: number;
  availGiB: number;
  sizeGiB: number;
  /** null on filesystems without a fixed inode table (e.g. btrfs reports 0 inodes). */
  inodesUsedPercent: number | null;
  inodesFree: number;
}

async function usageOf(path: string): Promise<Usage> {
  const fs = await statfs(path);
  const used = fs.blocks - fs.bfree;
  // As df does: blocks reserved for root count neither as used nor as available.
  const usedPercent = percentOf(used, used + fs.bavail);
  return {
    path,
    usedPercent,
    availGiB: (fs.bavail * fs.bsize) / GiB,
    sizeGiB: (fs.blocks * fs.bsize) / GiB,
    inodesUsedPercent: fs.files > 0 ? percentOf(fs.files - fs.ffree, fs.files) : null,
    inodesFree: fs.ffree,
  };
}

/**
 * Disk space and inodes on the filesystems the kubelet and the container runtime write to.
 * A path that does not exist is reported and skipped; if none can be checked, that is the finding.
 */
export class DiskSpaceProbe implements Probe {
  readonly name = 'diskSpace';
  readonly intervalMs: number;

  constructor(private readonly config: ProbesConfig['diskSpace']) {
    this.intervalMs = config.intervalSeconds * 1000;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    const usages: Usage[] = [];
    const missing: string[] = [];
    const unreadable: Figures = {};
    for (const path of this.config.paths) {
      signal.throwIfAborted();
      try {
        usages.push(await usageOf(path));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') missing.push(path);
        else unreadable[path] = (err as Error).message;
      }
    }

    const paths: Figures = {};
    for (const u of usages) {
      paths[u.path] = {
        usedPercent: round(u.usedPercent),
        availGiB: round(u.availGiB),
        sizeGiB: round(u.sizeGiB),
        inodesUsedPercent: u.inodesUsedPercent === null ? null : round(u.inodesUsedPercent),
        inodesFree: u.inodesFree,
      };
    }
    const figures: Figures = { paths, missing, unreadable };
    const skipped = [
      ...missing.map((p) => `${p} does not exist`),
      ...Object.entries(unreadable).map(([p, why]) => `${p} cannot be read (${String(why)})`),
    ];

    if (usages.length === 0) {
      const why = skipped.length > 0 ? skipped.join('; ') : 'no paths are configured';
      const message = `no filesystem checked: ${why}; set probes.diskSpace.paths to the kubelet and container runtime directories`;
      return result(this.name, startedAt, { healthy: false, reason: reasons.pathsMissing, message }, figures);
    }

    const { usedPercent, inodesUsedPercent } = this.config;
    const spaceLow = usages
      .filter((u) => u.usedPercent > usedPercent)
      .map((u) => `${u.path} ${formatPercent(u.usedPercent)} used, ${u.availGiB.toFixed(1)} GiB free (threshold ${usedPercent}%)`);
    const inodesLow = usages
      .filter((u) => u.inodesUsedPercent !== null && u.inodesUsedPercent > inodesUsedPercent)
      .map((u) => `${u.path} ${formatPercent(u.inodesUsedPercent ?? 0)} of inodes used, ${u.inodesFree} free (threshold ${inodesUsedPercent}%)`);
    const problems = [...spaceLow, ...inodesLow];
    const skippedText = skipped.length > 0 ? `; skipped: ${skipped.join('; ')}` : '';
    if (problems.length > 0) {
      const reason = spaceLow.length > 0 ? reasons.spaceLow : reasons.inodesLow;
      return result(this.name, startedAt, { healthy: false, reason, message: problems.join('; ') + skippedText }, figures);
    }
    const summary = usages
      .map((u) => `${u.path} ${formatPercent(u.usedPercent)} used, inodes ${u.inodesUsedPercent === null ? 'n/a' : formatPercent(u.inodesUsedPercent)}`)
      .join('; ');
    return result(this.name, startedAt, { healthy: true, reason: reasons.normal, message: summary + skippedText }, figures);
  }
}
