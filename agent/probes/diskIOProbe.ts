import { join } from 'node:path';
import type { ProbesConfig } from '../config/schema.js';
import { formatPercent, percentOf, round } from './figureFormat.js';
import { type Figures, type Probe, type ProbeResult, type Verdict, result } from './probe.js';
import { type NodeRoots, ProcFileError, parseCount, readErrorVerdict, readOptionalDir, readProcFile } from './procFiles.js';
import { type Psi, psiFigures, readPsi } from './psi.js';
import { probeReasons } from '../../common/contract.js';

const reasons = probeReasons.diskIO;

/** The cumulative counters of one /proc/diskstats line that the rates are computed from. */
export interface DiskCounters {
  reads: number;
  readSectors: number;
  readMs: number;
  writes: number;
  writeSectors: number;
  writeMs: number;
  inFlight: number;
  ioTicksMs: number;
}

interface Snapshot {
  at: number;
  devices: Map<string, DiskCounters>;
}

interface DeviceRates {
  readIops: number;
  writeIops: number;
  iops: number;
  readMBps: number;
  writeMBps: number;
  mbps: number;
  utilPercent: number;
  /** Mean time an IO took, queueing included; null when no IO completed. */
  awaitMs: number | null;
  inFlight: number;
}

const SECTOR_BYTES = 512;
/** Throughput is in MiB/s, the unit cloud disk throughput caps are provisioned in. */
const MB = 1024 * 1024;
/** The kernel prints the millisecond counters as 32-bit unsigned values, which wrap. */
const MS_COUNTER_WRAP = 2 ** 32;
/** Fallback when /sys/block is absent: sda1, vdb2, xvda1, nvme0n1p1, mmcblk0p2. */
const PARTITION_NAME = /^(?:[shv]d|xvd)[a-z]+\d+$|\dp\d+$/;

function parseDiskstats(text: string, file: string): Map<string, DiskCounters> {
  const devices = new Map<string, DiskCounters>();
  for (const [index, line] of text.split('\n').entries()) {
    const fields = line.trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === '') continue;
    const name = fields[2];
    if (fields.length < 14 || !name) {
      throw new ProcFileError(file, `line ${index + 1} has ${fields.length} fields, expected at least 14`);
    }
    const at = (i: number, what: string) => parseCount(fields[i], file, `${name} ${what}`);
    devices.set(name, {
      reads: at(3, 'reads completed'),
      readSectors: at(5, 'sectors read'),
      readMs: at(6, 'ms reading'),
      writes: at(7, 'writes completed'),
      writeSectors: at(9, 'sectors written'),
      writeMs: at(10, 'ms writing'),
      inFlight: at(11, 'IOs in progress'),
      ioTicksMs: at(12, 'ms doing IO'),
    });
  }
  return devices;
}

/**
 * Rates between two samples of one device, or null when its event counters went backwards
 * (the device was replaced or its statistics reset): that device starts a new baseline.
 */
function deviceRates(now: DiskCounters, before: DiskCounters, seconds: number): DeviceRates | null {
  const reads = now.reads - before.reads;
  const writes = now.writes - before.writes;
  const readSectors = now.readSectors - before.readSectors;
  const writeSectors = now.writeSectors - before.writeSectors;
  if (reads < 0 || writes < 0 || readSectors < 0 || writeSectors < 0) return null;
  const msDelta = (a: number, b: number) => (a >= b ? a - b : a + MS_COUNTER_WRAP - b);
  const ios = reads + writes;
  const ioMs = msDelta(now.readMs, before.readMs) + msDelta(now.writeMs, before.writeMs);
  const readMBps = (readSectors * SECTOR_BYTES) / MB / seconds;
  const writeMBps = (writeSectors * SECTOR_BYTES) / MB / seconds;
  return {
    readIops: reads / seconds,
    writeIops: writes / seconds,
    iops: ios / seconds,
    readMBps,
    writeMBps,
    mbps: readMBps + writeMBps,
    utilPercent: Math.min(100, percentOf(msDelta(now.ioTicksMs, before.ioTicksMs), seconds * 1000)),
    awaitMs: ios > 0 ? ioMs / ios : null,
    inFlight: now.inFlight,
  };
}

function rateFigures(r: DeviceRates): Figures {
  return {
    readIops: round(r.readIops),
    writeIops: round(r.writeIops),
    iops: round(r.iops),
    readMBps: round(r.readMBps),
    writeMBps: round(r.writeMBps),
    mbps: round(r.mbps),
    utilPercent: round(r.utilPercent),
    awaitMs: r.awaitMs === null ? null : round(r.awaitMs),
    inFlight: r.inFlight,
  };
}

function describeDevice(name: string, r: DeviceRates): string {
  const wait = r.awaitMs === null ? '' : ` await ${r.awaitMs.toFixed(1)} ms`;
  return `${name} ${Math.round(r.iops)} IOPS ${r.mbps.toFixed(1)} MB/s util ${formatPercent(r.utilPercent)}${wait}`;
}

/**
 * Disk IO pressure: PSI io stall plus per-device IOPS, throughput, utilisation and await from
 * /proc/diskstats deltas. A configured device running at its provisioned IOPS or MB/s cap while
 * tasks stall on IO is the cloud-disk throttling that hangs a node (`IOThrottled`).
 */
export class DiskIOProbe implements Probe {
  readonly name = 'diskIO';
  readonly intervalMs: number;
  private readonly ignore: RegExp;
  private previous: Snapshot | null = null;

  /** `clock` is a monotonic millisecond clock for the rates; tests pass a fake one. */
  constructor(
    private readonly config: ProbesConfig['diskIO'],
    private readonly roots: NodeRoots,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.intervalMs = config.intervalSeconds * 1000;
    this.ignore = new RegExp(config.ignoreDevices);
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    try {
      const psi = await readPsi(this.roots.procRoot, 'io', signal);
      const statsFile = join(this.roots.procRoot, 'diskstats');
      const counters = parseDiskstats(await readProcFile(statsFile, signal), statsFile);
      const wholeDisks = await readOptionalDir(join(this.roots.sysRoot, 'block'));
      const [verdict, figures] = this.sample(psi, counters, wholeDisks ? new Set(wholeDisks) : null);
      return result(this.name, startedAt, verdict, figures);
    } catch (err) {
      if (err instanceof ProcFileError) return result(this.name, startedAt, readErrorVerdict(err), { file: err.file });
      throw err;
    }
  }

  private sampled(name: string, wholeDisks: Set<string> | null): boolean {
    if (this.config.devices.some((d) => d.name === name)) return true;
    if (this.ignore.test(name)) return false;
    // /sys/block names a device `cciss!c0d0` where diskstats says `cciss/c0d0`.
    return wholeDisks ? wholeDisks.has(name.replaceAll('/', '!')) : !PARTITION_NAME.test(name);
  }

  private sample(psi: Psi | null, counters: Map<string, DiskCounters>, wholeDisks: Set<string> | null): [Verdict, Figures] {
    const now = this.clock();
    const previous = this.previous;
    this.previous = { at: now, devices: counters };
    const seconds = previous ? (now - previous.at) / 1000 : 0;

    const rates = new Map<string, DeviceRates>();
    const baselineDevices: string[] = [];
    for (const [name, current] of counters) {
      if (!this.sampled(name, wholeDisks)) continue;
      const before = previous?.devices.get(name);
      const r = before && seconds > 0 ? deviceRates(current, before, seconds) : null;
      if (r) rates.set(name, r);
      else baselineDevices.push(name);
    }

    const cfg = this.config;
    const deviceFigures: Figures = {};
    for (const [name, r] of rates) deviceFigures[name] = rateFigures(r);
    const atCap: string[] = [];
    for (const device of cfg.devices) {
      const r = rates.get(device.name);
      if (!r) continue;
      const limits: string[] = [];
      const figures = deviceFigures[device.name] as Figures;
      if (device.iopsCap !== undefined) {
        const use = percentOf(r.iops, device.iopsCap);
        figures.iopsCapUsePercent = round(use);
        if (use >= cfg.capUsePercent) limits.push(`${Math.round(r.iops)}/${device.iopsCap} IOPS`);
      }
      if (device.mbpsCap !== undefined) {
        const use = percentOf(r.mbps, device.mbpsCap);
        figures.mbpsCapUsePercent = round(use);
        if (use >= cfg.capUsePercent) limits.push(`${r.mbps.toFixed(1)}/${device.mbpsCap} MB/s`);
      }
      if (limits.length > 0) atCap.push(`${device.name} at ${limits.join(' and ')}`);
    }

    const baseline = previous === null || seconds <= 0;
    const figures: Figures = {
      baseline,
      psi: psi ? psiFigures(psi) : null,
      intervalSeconds: previous && seconds > 0 ? round(seconds, 3) : null,
      devices: deviceFigures,
      baselineDevices,
      missingDevices: cfg.devices.map((d) => d.name).filter((name) => !counters.has(name)),
      atCap,
    };
    return [this.verdict(psi, rates, atCap, baseline), figures];
  }

  private verdict(psi: Psi | null, rates: Map<string, DeviceRates>, atCap: string[], baseline: boolean): Verdict {
    const cfg = this.config;
    const some = psi ? `io some avg10=${formatPercent(psi.some.avg10)}` : null;
    const someHigh = psi !== null && psi.some.avg10 > cfg.someAvg10Percent;
    const fullAvg10 = psi?.full?.avg10 ?? null;
    const fullHigh = fullAvg10 !== null && fullAvg10 > cfg.fullAvg10Percent;
    if (someHigh && atCap.length > 0) {
      return { healthy: false, reason: reasons.throttled, message: `${some} on ${atCap.join('; ')}` };
    }

    const busiest = [...rates].sort(([, a], [, b]) => b.utilPercent - a.utilPercent)[0];
    const busiestText = busiest ? `busiest ${describeDevice(...busiest)}` : null;
    if (someHigh || fullHigh) {
      const stalls = [
        someHigh ? `${some} is over ${cfg.someAvg10Percent}%` : null,
        fullHigh ? `io full avg10=${formatPercent(fullAvg10)} is over ${cfg.fullAvg10Percent}%` : null,
      ];
      return { healthy: false, reason: reasons.pressureHigh, message: [...stalls, busiestText].filter(Boolean).join('; ') };
    }

    const stall = psi
      ? `${some}${fullAvg10 !== null ? ` full avg10=${formatPercent(fullAvg10)}` : ''}`
      : 'no PSI on this kernel, so throttling cannot be judged';
    if (baseline) {
      return { healthy: true, reason: reasons.baseline, message: `${stall}; first sample, device rates start with the next one` };
    }
    const capText = atCap.length > 0 ? `at cap without IO stall: ${atCap.join('; ')}` : null;
    return { healthy: true, reason: reasons.normal, message: [stall, busiestText, capText].filter(Boolean).join('; ') };
  }
}
