import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { CpuProbe } from '../../agent/probes/cpuProbe.js';
import { FixtureTree } from '../support/fixtureTree.js';

const cpuConfig = (overrides: Record<string, unknown> = {}) => agentConfigSchema.parse({ probes: { cpu: overrides } }).probes.cpu;
const signal = () => new AbortController().signal;

/** /proc/stat with the aggregate line built from busy and idle ticks, and two cpuN lines. */
function procStat(user: number, system: number, idle: number, iowait = 0): string {
  return [
    `cpu  ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0`,
    'cpu0 1 0 1 1 0 0 0 0 0 0',
    'cpu1 1 0 1 1 0 0 0 0 0 0',
    'intr 12345',
    'ctxt 678',
  ].join('\n');
}

describe('cpu probe', () => {
  let proc: FixtureTree;
  const roots = () => ({ procRoot: proc.root, sysRoot: join(proc.root, 'no-sys') });

  beforeEach(async () => {
    proc = await FixtureTree.create({ loadavg: '0.50 0.40 0.30 2/300 4242\n', stat: procStat(100, 50, 850) });
  });
  afterEach(async () => proc.dispose());

  describe('with PSI', () => {
    it('is healthy while tasks wait for a CPU less than the threshold', async () => {
      await proc.write({
        'pressure/cpu': 'some avg10=12.34 avg60=10.00 avg300=5.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
      });
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r).toMatchObject({ probe: 'cpu', healthy: true, reason: 'CPUPressureNormal' });
      expect(r.message).toBe('cpu some avg10=12.3% (threshold 75%)');
      expect(r.figures).toEqual({
        source: 'psi',
        psi: {
          some: { avg10: 12.34, avg60: 10, avg300: 5, totalUs: 123456 },
          full: { avg10: 0, avg60: 0, avg300: 0, totalUs: 0 },
        },
      });
    });

    it('reports CPUPressureHigh when some avg10 is over the configured threshold', async () => {
      await proc.write({ 'pressure/cpu': 'some avg10=80.50 avg60=70.00 avg300=40.00 total=999\n' });
      const r = await new CpuProbe(cpuConfig({ someAvg10Percent: 75 }), roots()).run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'CPUPressureHigh', message: 'cpu some avg10=80.5% (threshold 75%)' });
      // Kernels before 5.13 have no cpu `full` line.
      expect(r.figures.psi).toMatchObject({ full: null });
    });

    it('reports a read error naming the file when the PSI file is malformed', async () => {
      await proc.write({ 'pressure/cpu': 'some avg10=lots avg60=1 avg300=1 total=1\n' });
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(proc.root, 'pressure/cpu') } });
      expect(r.message).toContain('some avg10 is "lots"');
    });

    it('reports a read error when the PSI file has no "some" line', async () => {
      await proc.write({ 'pressure/cpu': 'garbage\n' });
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError' });
      expect(r.message).toContain('pressure/cpu');
    });
  });

  describe('without PSI', () => {
    it('waits for a second sample before judging utilisation, and judges load per core at once', async () => {
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r).toMatchObject({ healthy: true, reason: 'CPUPressureNormal' });
      expect(r.figures).toEqual({
        source: 'stat',
        baseline: true,
        utilisationPercent: null,
        load1: 0.5,
        load5: 0.4,
        load15: 0.3,
        cores: 2,
        loadPerCore: 0.25,
      });
      expect(r.message).toContain('pending a second sample');
      expect(r.message).toContain('no PSI on this kernel');
    });

    it('computes utilisation from the /proc/stat delta between two samples', async () => {
      const probe = new CpuProbe(cpuConfig({ utilisationPercent: 95 }), roots());
      await probe.run(signal());
      // +900 busy (user 600, system 300), +100 idle (idle 60, iowait 40): 90% busy.
      await proc.write({ stat: procStat(700, 350, 910, 40) });
      const r = await probe.run(signal());
      expect(r.figures.utilisationPercent).toBe(90);
      expect(r.figures.baseline).toBe(false);
      expect(r).toMatchObject({ healthy: true, reason: 'CPUPressureNormal' });
      expect(r.message).toContain('cpu utilisation 90.0% (threshold 95%)');
    });

    it('reports CPUPressureHigh when utilisation is over the threshold', async () => {
      const probe = new CpuProbe(cpuConfig({ utilisationPercent: 85 }), roots());
      await probe.run(signal());
      await proc.write({ stat: procStat(700, 350, 950) });
      const r = await probe.run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'CPUPressureHigh' });
    });

    it('reports CPUPressureHigh when the 1-minute load per core is over the threshold', async () => {
      await proc.write({ loadavg: '9.00 4.00 2.00 9/300 4242\n' });
      const r = await new CpuProbe(cpuConfig({ loadPerCore: 4 }), roots()).run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'CPUPressureHigh', figures: { loadPerCore: 4.5, cores: 2 } });
      expect(r.message).toContain('load1 9.00 = 4.50 per core on 2 cores (threshold 4)');
    });

    it('does not invent a utilisation when the counters go backwards', async () => {
      const probe = new CpuProbe(cpuConfig(), roots());
      await probe.run(signal());
      await proc.write({ stat: procStat(10, 5, 85) });
      const r = await probe.run(signal());
      expect(r.figures.utilisationPercent).toBeNull();
    });

    it('counts cores from the machine when /proc/stat lists no cpuN lines', async () => {
      await proc.write({ stat: 'cpu  100 0 50 850 0 0 0 0 0 0\n' });
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r.figures.cores).toBe(availableParallelism());
    });

    it('reports a read error naming /proc/loadavg when it is malformed', async () => {
      await proc.write({ loadavg: '0.5 0.4\n' });
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(proc.root, 'loadavg') } });
      expect(r.message).toContain('load15 is missing');
    });

    it('reports a read error when /proc/stat is missing', async () => {
      await proc.remove('stat');
      const r = await new CpuProbe(cpuConfig(), roots()).run(signal());
      expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(proc.root, 'stat') } });
    });
  });

  it('samples at the configured interval', () => {
    expect(new CpuProbe(cpuConfig({ intervalSeconds: 15 }), roots()).intervalMs).toBe(15_000);
  });
});
