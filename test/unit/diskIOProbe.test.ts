import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { DiskIOProbe, type DiskCounters } from '../../agent/probes/diskIOProbe.js';
import { FixtureTree } from '../support/fixtureTree.js';

const diskIOConfig = (overrides: Record<string, unknown> = {}) =>
  agentConfigSchema.parse({ probes: { diskIO: overrides } }).probes.diskIO;
const signal = () => new AbortController().signal;

const idle: DiskCounters = { reads: 0, readSectors: 0, readMs: 0, writes: 0, writeSectors: 0, writeMs: 0, inFlight: 0, ioTicksMs: 0 };

/** One /proc/diskstats line (kernel 5.5+ layout: 11 IO fields, 4 discard, 2 flush). */
function line(minor: number, name: string, c: DiskCounters): string {
  const fields = [c.reads, 0, c.readSectors, c.readMs, c.writes, 0, c.writeSectors, c.writeMs, c.inFlight, c.ioTicksMs, 0];
  return `   8      ${minor} ${name} ${fields.join(' ')} 0 0 0 0 0 0`;
}

const sdaBefore: DiskCounters = {
  reads: 1000,
  readSectors: 80_000,
  readMs: 5000,
  writes: 2000,
  writeSectors: 160_000,
  writeMs: 10_000,
  inFlight: 0,
  ioTicksMs: 30_000,
};
/**
 * Ten seconds later: 30000 reads + 20000 writes (5000 IOPS), 100 MiB read + 200 MiB written
 * (30 MiB/s), 100 s of IO time over 50000 IOs (2 ms await), busy 9.5 of 10 s (95%).
 */
const sdaAfter: DiskCounters = {
  reads: 31_000,
  readSectors: 80_000 + 204_800,
  readMs: 65_000,
  writes: 22_000,
  writeSectors: 160_000 + 409_600,
  writeMs: 50_000,
  inFlight: 7,
  ioTicksMs: 39_500,
};

function diskstats(sda: DiskCounters, others: Partial<Record<string, DiskCounters>> = {}): string {
  const lines = [
    line(0, 'sda', sda),
    line(1, 'sda1', sda),
    line(0, 'nvme0n1', others.nvme0n1 ?? idle),
    line(1, 'nvme0n1p1', others.nvme0n1 ?? idle),
    line(0, 'loop0', others.loop0 ?? idle),
    line(0, 'dm-0', others['dm-0'] ?? idle),
  ];
  return `${lines.join('\n')}\n`;
}

const ioPsi = (some: number, full: number) =>
  `some avg10=${some.toFixed(2)} avg60=1.00 avg300=1.00 total=5000\nfull avg10=${full.toFixed(2)} avg60=0.50 avg300=0.50 total=2000\n`;

describe('disk IO probe', () => {
  let tree: FixtureTree;
  let now: number;
  const clock = () => now;
  const roots = () => ({ procRoot: join(tree.root, 'proc'), sysRoot: join(tree.root, 'sys') });
  const probe = (overrides: Record<string, unknown> = {}) => new DiskIOProbe(diskIOConfig(overrides), roots(), clock);

  /** Takes the baseline sample, advances the fake clock ten seconds, and writes the second sample. */
  async function twoSamples(p: DiskIOProbe, psi = ioPsi(0.5, 0.1), after = diskstats(sdaAfter)) {
    await tree.write({ 'proc/pressure/io': psi });
    await p.run(signal());
    now += 10_000;
    await tree.write({ 'proc/diskstats': after });
    return p.run(signal());
  }

  beforeEach(async () => {
    now = 1_000_000;
    tree = await FixtureTree.create({
      'proc/diskstats': diskstats(sdaBefore),
      'proc/pressure/io': ioPsi(0.5, 0.1),
      // Whole disks appear in /sys/block; partitions do not.
      'sys/block/sda/': '',
      'sys/block/nvme0n1/': '',
      'sys/block/loop0/': '',
      'sys/block/dm-0/': '',
    });
  });
  afterEach(async () => tree.dispose());

  it('reports its first sample honestly as a baseline without device rates', async () => {
    const r = await probe().run(signal());
    expect(r).toMatchObject({ probe: 'diskIO', healthy: true, reason: 'DiskIOBaseline' });
    expect(r.message).toBe('io some avg10=0.5% full avg10=0.1%; first sample, device rates start with the next one');
    expect(r.figures).toMatchObject({ baseline: true, intervalSeconds: null, devices: {}, baselineDevices: ['sda', 'nvme0n1'] });
  });

  it('computes IOPS, MB/s, utilisation and await per whole disk from two samples', async () => {
    const r = await twoSamples(probe());
    expect(r).toMatchObject({ healthy: true, reason: 'IOPressureNormal' });
    expect(r.figures.intervalSeconds).toBe(10);
    expect(r.figures.devices).toEqual({
      sda: {
        readIops: 3000,
        writeIops: 2000,
        iops: 5000,
        readMBps: 10,
        writeMBps: 20,
        mbps: 30,
        utilPercent: 95,
        awaitMs: 2,
        inFlight: 7,
      },
      nvme0n1: { readIops: 0, writeIops: 0, iops: 0, readMBps: 0, writeMBps: 0, mbps: 0, utilPercent: 0, awaitMs: null, inFlight: 0 },
    });
    expect(r.message).toBe('io some avg10=0.5% full avg10=0.1%; busiest sda 5000 IOPS 30.0 MB/s util 95.0% await 2.0 ms');
  });

  it('reports IOThrottled when a disk sits at its IOPS cap while tasks stall on IO', async () => {
    const r = await twoSamples(probe({ someAvg10Percent: 40, devices: [{ name: 'sda', iopsCap: 5000 }] }), ioPsi(42.1, 3));
    expect(r).toMatchObject({ healthy: false, reason: 'IOThrottled', message: 'io some avg10=42.1% on sda at 5000/5000 IOPS' });
    expect(r.figures.devices).toMatchObject({ sda: { iopsCapUsePercent: 100 } });
    expect(r.figures.atCap).toEqual(['sda at 5000/5000 IOPS']);
  });

  it('reports IOThrottled when a disk sits at its MB/s cap while tasks stall on IO', async () => {
    const r = await twoSamples(probe({ someAvg10Percent: 40, devices: [{ name: 'sda', iopsCap: 20_000, mbpsCap: 31 }] }), ioPsi(60, 3));
    expect(r).toMatchObject({ healthy: false, reason: 'IOThrottled', message: 'io some avg10=60.0% on sda at 30.0/31 MB/s' });
    expect(r.figures.devices).toMatchObject({ sda: { iopsCapUsePercent: 25, mbpsCapUsePercent: 96.77 } });
  });

  it('reports IOPressureHigh, naming the busiest disk, when IO stalls but no disk is at its cap', async () => {
    const r = await twoSamples(probe({ someAvg10Percent: 50, devices: [{ name: 'sda', iopsCap: 20_000 }] }), ioPsi(70, 3));
    expect(r).toMatchObject({ healthy: false, reason: 'IOPressureHigh' });
    expect(r.message).toBe('io some avg10=70.0% is over 50%; busiest sda 5000 IOPS 30.0 MB/s util 95.0% await 2.0 ms');
  });

  it('reports IOPressureHigh when all tasks stall on IO (full) over the threshold', async () => {
    const r = await twoSamples(probe({ fullAvg10Percent: 25 }), ioPsi(20, 30));
    expect(r).toMatchObject({ healthy: false, reason: 'IOPressureHigh' });
    expect(r.message).toContain('io full avg10=30.0% is over 25%');
  });

  it('judges stall from PSI even on the first sample', async () => {
    await tree.write({ 'proc/pressure/io': ioPsi(80, 50) });
    const r = await probe().run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'IOPressureHigh' });
  });

  it('stays healthy when a disk runs at its cap without IO stall, and says so', async () => {
    const r = await twoSamples(probe({ devices: [{ name: 'sda', iopsCap: 5000 }] }), ioPsi(5, 1));
    expect(r).toMatchObject({ healthy: true, reason: 'IOPressureNormal' });
    expect(r.message).toContain('at cap without IO stall: sda at 5000/5000 IOPS');
  });

  it('never reports throttling on a kernel without PSI, and says why', async () => {
    const p = probe({ devices: [{ name: 'sda', iopsCap: 5000 }] });
    await tree.remove('proc/pressure');
    await p.run(signal());
    now += 10_000;
    await tree.write({ 'proc/diskstats': diskstats(sdaAfter) });
    const r = await p.run(signal());
    expect(r).toMatchObject({ healthy: true, reason: 'IOPressureNormal', figures: { psi: null } });
    expect(r.message).toContain('no PSI on this kernel, so throttling cannot be judged');
  });

  it('skips partitions by name when /sys is not available', async () => {
    await tree.remove('sys');
    const r = await twoSamples(probe());
    expect(Object.keys(r.figures.devices as object)).toEqual(['sda', 'nvme0n1']);
  });

  it('samples a configured device even when it is a partition or matches ignoreDevices, and lists configured devices that do not exist', async () => {
    const r = await twoSamples(probe({ devices: [{ name: 'sda1', iopsCap: 9000 }, { name: 'dm-0' }, { name: 'sdz', iopsCap: 1 }] }));
    expect(Object.keys(r.figures.devices as object)).toEqual(['sda', 'sda1', 'nvme0n1', 'dm-0']);
    expect(r.figures.missingDevices).toEqual(['sdz']);
  });

  it('skips devices matching a configured ignoreDevices expression', async () => {
    const r = await twoSamples(probe({ ignoreDevices: '^nvme' }));
    expect(Object.keys(r.figures.devices as object)).toEqual(['sda', 'loop0', 'dm-0']);
  });

  it('starts a new baseline for a device whose counters went backwards, then reports it again', async () => {
    const p = probe();
    await twoSamples(p);
    now += 10_000;
    await tree.write({ 'proc/diskstats': diskstats(sdaBefore) });
    const reset = await p.run(signal());
    expect(reset.figures.baselineDevices).toEqual(['sda']);
    expect(Object.keys(reset.figures.devices as object)).toEqual(['nvme0n1']);
    now += 10_000;
    await tree.write({ 'proc/diskstats': diskstats(sdaAfter) });
    const resumed = await p.run(signal());
    expect(resumed.figures.devices).toMatchObject({ sda: { iops: 5000 } });
  });

  it('handles the wrap of the 32-bit millisecond counters', async () => {
    const wrapAt = 2 ** 32;
    const before = { ...sdaBefore, readMs: wrapAt - 1000, ioTicksMs: wrapAt - 500 };
    await tree.write({ 'proc/diskstats': diskstats(before) });
    // Reads take 1000 ms before the wrap and 59000 ms after it: the same 60 s as without a wrap.
    const after = { ...sdaAfter, readMs: 59_000, ioTicksMs: 9000 };
    const r = await twoSamples(probe(), ioPsi(1, 0), diskstats(after));
    expect(r.figures.devices).toMatchObject({ sda: { awaitMs: 2, utilPercent: 95 } });
  });

  it('treats a sample taken with no time elapsed as a baseline rather than dividing by zero', async () => {
    const p = probe();
    await p.run(signal());
    const r = await p.run(signal());
    expect(r).toMatchObject({ reason: 'DiskIOBaseline', figures: { intervalSeconds: null, devices: {} } });
  });

  it('reports a read error naming the line of a malformed /proc/diskstats', async () => {
    await tree.write({ 'proc/diskstats': `${line(0, 'sda', sdaBefore)}\n   8 16 sdb 1 2 3\n` });
    const r = await probe().run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(tree.root, 'proc/diskstats') } });
    expect(r.message).toContain('line 2 has 6 fields, expected at least 14');
  });

  it('reports a read error naming the field of a non-numeric counter', async () => {
    await tree.write({ 'proc/diskstats': line(0, 'sda', sdaBefore).replace(' 1000 ', ' x ') });
    const r = await probe().run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError' });
    expect(r.message).toContain('sda reads completed is "x"');
  });
});
