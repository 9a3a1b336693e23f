import { existsSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { CpuProbe } from '../../agent/probes/cpuProbe.js';
import { DiskIOProbe } from '../../agent/probes/diskIOProbe.js';
import { DiskSpaceProbe } from '../../agent/probes/diskSpaceProbe.js';
import { MemoryProbe } from '../../agent/probes/memoryProbe.js';
import { PidProbe } from '../../agent/probes/pidProbe.js';
import type { Figures } from '../../agent/probes/probe.js';
import { FixtureTree } from '../support/fixtureTree.js';

/**
 * The probes against this machine's own /proc and /sys (Linux with PSI): the figures must be
 * plausible measurements, whatever the verdict on a shared, busy test machine.
 */
const probes = agentConfigSchema.parse({}).probes;
const roots = { procRoot: '/proc', sysRoot: '/sys' };
const signal = () => new AbortController().signal;
const hasPsi = existsSync('/proc/pressure/cpu');

function expectPercent(value: unknown): void {
  expect(typeof value).toBe('number');
  expect(value).toBeGreaterThanOrEqual(0);
  expect(value).toBeLessThanOrEqual(100);
}

function expectSanePsi(psi: unknown): void {
  const some = (psi as Figures).some as Figures;
  for (const avg of ['avg10', 'avg60', 'avg300']) expectPercent(some[avg]);
  expect(some.totalUs).toBeGreaterThanOrEqual(0);
}

describe.runIf(process.platform === 'linux')('probes on this machine', () => {
  it('cpu reads PSI from the real /proc', async () => {
    const r = await new CpuProbe(probes.cpu, roots).run(signal());
    expect(['CPUPressureNormal', 'CPUPressureHigh']).toContain(r.reason);
    expect(r.figures.source).toBe(hasPsi ? 'psi' : 'stat');
    if (hasPsi) expectSanePsi(r.figures.psi);
  });

  describe('cpu without PSI, on the real /proc/stat and /proc/loadavg', () => {
    let proc: FixtureTree;
    beforeAll(async () => {
      proc = await FixtureTree.create();
      await symlink('/proc/stat', join(proc.root, 'stat'));
      await symlink('/proc/loadavg', join(proc.root, 'loadavg'));
    });
    afterAll(async () => proc.dispose());

    it('measures utilisation between two samples and load per core', async () => {
      const probe = new CpuProbe(probes.cpu, { procRoot: proc.root, sysRoot: '/sys' });
      await probe.run(signal());
      await sleep(300);
      const r = await probe.run(signal());
      expect(['CPUPressureNormal', 'CPUPressureHigh']).toContain(r.reason);
      expectPercent(r.figures.utilisationPercent);
      expect(r.figures.cores).toBeGreaterThanOrEqual(1);
      expect(r.figures.loadPerCore).toBeGreaterThanOrEqual(0);
    });
  });

  it('memory reads MemTotal and MemAvailable', async () => {
    const r = await new MemoryProbe(probes.memory, roots).run(signal());
    expect(['MemoryPressureNormal', 'MemoryPressureHigh', 'MemoryAvailableLow']).toContain(r.reason);
    expect(r.figures.totalMiB).toBeGreaterThan(64);
    expect(r.figures.availableMiB).toBeGreaterThan(0);
    expect(r.figures.availableMiB).toBeLessThanOrEqual(r.figures.totalMiB as number);
    expectPercent(r.figures.availablePercent);
    if (hasPsi) expectSanePsi(r.figures.psi);
  });

  it('pid counts the running tasks against the kernel limits', async () => {
    const r = await new PidProbe(probes.pid, roots).run(signal());
    expect(['PIDPressureNormal', 'PIDPressureHigh']).toContain(r.reason);
    expect(r.figures.tasks).toBeGreaterThan(1);
    expect(r.figures.pidMax).toBeGreaterThanOrEqual(r.figures.tasks as number);
    expect(r.figures.threadsMax).toBeGreaterThanOrEqual(r.figures.tasks as number);
    expectPercent(r.figures.pidUsedPercent);
    expectPercent(r.figures.threadsUsedPercent);
  });

  it('diskIO measures the real whole disks between two samples', async () => {
    const probe = new DiskIOProbe(probes.diskIO, roots);
    const first = await probe.run(signal());
    expect(first.reason === 'DiskIOBaseline' || !first.healthy).toBe(true);
    await sleep(300);
    const r = await probe.run(signal());
    expect(['IOPressureNormal', 'IOPressureHigh']).toContain(r.reason);
    expect(r.figures.intervalSeconds).toBeGreaterThan(0.2);
    const devices = r.figures.devices as Record<string, Figures>;
    expect(Object.keys(devices).length).toBeGreaterThan(0);
    for (const [name, d] of Object.entries(devices)) {
      expect(name).not.toMatch(/^(loop|ram|zram)/);
      expect(d.iops).toBeGreaterThanOrEqual(0);
      expect(d.mbps).toBeGreaterThanOrEqual(0);
      expectPercent(d.utilPercent);
    }
    if (hasPsi) expectSanePsi(r.figures.psi);
  });

  it('diskSpace reads the filesystems of / and the temp directory', async () => {
    const config = agentConfigSchema.parse({ probes: { diskSpace: { paths: ['/', tmpdir()] } } }).probes.diskSpace;
    const r = await new DiskSpaceProbe(config).run(signal());
    expect(['DiskSpaceNormal', 'DiskSpaceLow', 'InodesLow']).toContain(r.reason);
    for (const fs of Object.values(r.figures.paths as Record<string, Figures>)) {
      expectPercent(fs.usedPercent);
      expect(fs.sizeGiB).toBeGreaterThan(0);
    }
  });
});
