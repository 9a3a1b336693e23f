import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { MemoryProbe } from '../../agent/probes/memoryProbe.js';
import { FixtureTree } from '../support/fixtureTree.js';

const memoryConfig = (overrides: Record<string, unknown> = {}) =>
  agentConfigSchema.parse({ probes: { memory: overrides } }).probes.memory;
const signal = () => new AbortController().signal;

function meminfo(totalKiB: number, availableKiB: number): string {
  return [
    `MemTotal:       ${totalKiB} kB`,
    'MemFree:          123456 kB',
    `MemAvailable:   ${availableKiB} kB`,
    'Buffers:           2048 kB',
    'HugePages_Total:       0',
  ].join('\n');
}

const psi = (someAvg10: number, fullAvg10: number) =>
  `some avg10=${someAvg10.toFixed(2)} avg60=1.00 avg300=0.50 total=1000\nfull avg10=${fullAvg10.toFixed(2)} avg60=0.00 avg300=0.00 total=10\n`;

describe('memory probe', () => {
  let proc: FixtureTree;
  const roots = () => ({ procRoot: proc.root, sysRoot: join(proc.root, 'no-sys') });

  beforeEach(async () => {
    // 16 GiB total, 8 GiB available, little stall.
    proc = await FixtureTree.create({ meminfo: meminfo(16 * 1024 * 1024, 8 * 1024 * 1024), 'pressure/memory': psi(1.5, 0.2) });
  });
  afterEach(async () => proc.dispose());

  it('is healthy with plenty of available memory and little stall, and reports the figures', async () => {
    const r = await new MemoryProbe(memoryConfig(), roots()).run(signal());
    expect(r).toMatchObject({ probe: 'memory', healthy: true, reason: 'MemoryPressureNormal' });
    expect(r.figures).toEqual({
      psi: {
        some: { avg10: 1.5, avg60: 1, avg300: 0.5, totalUs: 1000 },
        full: { avg10: 0.2, avg60: 0, avg300: 0, totalUs: 10 },
      },
      totalMiB: 16384,
      availableMiB: 8192,
      availablePercent: 50,
    });
    expect(r.message).toBe('MemAvailable 8192 MiB (50.0% of 16384 MiB), memory some avg10=1.5% full avg10=0.2%');
  });

  it('reports MemoryAvailableLow near the kubelet eviction threshold of 100Mi', async () => {
    await proc.write({ meminfo: meminfo(1024 * 1024, 150 * 1024) });
    const r = await new MemoryProbe(memoryConfig({ availableMiB: 200, availablePercent: 5 }), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'MemoryAvailableLow', figures: { availableMiB: 150 } });
    expect(r.message).toContain('MemAvailable 150 MiB is below 200 MiB');
    expect(r.message).toContain('memory.available<100Mi');
  });

  it('reports MemoryAvailableLow when available memory is below the configured share of total', async () => {
    // 64 GiB total, 2 GiB available: plenty of MiB, but 3.1% of the machine.
    await proc.write({ meminfo: meminfo(64 * 1024 * 1024, 2 * 1024 * 1024) });
    const r = await new MemoryProbe(memoryConfig({ availablePercent: 5 }), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'MemoryAvailableLow' });
    expect(r.message).toBe('MemAvailable 3.1% of 65536 MiB is below 5%');
  });

  it('reports MemoryPressureHigh when tasks stall on memory (some) over the threshold', async () => {
    await proc.write({ 'pressure/memory': psi(45, 0) });
    const r = await new MemoryProbe(memoryConfig({ someAvg10Percent: 40 }), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'MemoryPressureHigh', message: 'memory some avg10=45.0% is over 40%' });
  });

  it('reports MemoryPressureHigh when all tasks stall on memory (full) over the threshold', async () => {
    await proc.write({ 'pressure/memory': psi(5, 12) });
    const r = await new MemoryProbe(memoryConfig({ fullAvg10Percent: 10 }), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'MemoryPressureHigh', message: 'memory full avg10=12.0% is over 10%' });
  });

  it('names low available memory as the reason when memory also stalls, and lists both', async () => {
    await proc.write({ meminfo: meminfo(1024 * 1024, 50 * 1024), 'pressure/memory': psi(60, 30) });
    const r = await new MemoryProbe(memoryConfig(), roots()).run(signal());
    expect(r.reason).toBe('MemoryAvailableLow');
    expect(r.message).toContain('memory some avg10=60.0%');
    expect(r.message).toContain('memory full avg10=30.0%');
  });

  it('judges available memory alone on a kernel without PSI', async () => {
    await proc.remove('pressure');
    const r = await new MemoryProbe(memoryConfig(), roots()).run(signal());
    expect(r).toMatchObject({ healthy: true, reason: 'MemoryPressureNormal', figures: { psi: null } });
    expect(r.message).toContain('no PSI on this kernel');
  });

  it('reports a read error naming MemAvailable when /proc/meminfo lacks it', async () => {
    await proc.write({ meminfo: 'MemTotal: 1024 kB\nMemFree: 10 kB\n' });
    const r = await new MemoryProbe(memoryConfig(), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(proc.root, 'meminfo') } });
    expect(r.message).toContain('MemAvailable is missing');
  });

  it('reports a read error when MemTotal is 0 rather than dividing by it', async () => {
    await proc.write({ meminfo: meminfo(0, 0) });
    const r = await new MemoryProbe(memoryConfig(), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError' });
    expect(r.message).toContain('MemTotal is 0');
  });
});
