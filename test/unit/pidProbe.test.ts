import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { PidProbe } from '../../agent/probes/pidProbe.js';
import { FixtureTree } from '../support/fixtureTree.js';

const pidConfig = (overrides: Record<string, unknown> = {}) => agentConfigSchema.parse({ probes: { pid: overrides } }).probes.pid;
const signal = () => new AbortController().signal;

describe('pid probe', () => {
  let proc: FixtureTree;
  const roots = () => ({ procRoot: proc.root, sysRoot: join(proc.root, 'no-sys') });

  beforeEach(async () => {
    proc = await FixtureTree.create({
      loadavg: '1.00 1.00 1.00 3/1024 5555\n',
      'sys/kernel/pid_max': '32768\n',
      'sys/kernel/threads-max': '8192\n',
    });
  });
  afterEach(async () => proc.dispose());

  it('reports tasks in use as a share of kernel.pid_max and kernel.threads-max', async () => {
    const r = await new PidProbe(pidConfig(), roots()).run(signal());
    expect(r).toMatchObject({ probe: 'pid', healthy: true, reason: 'PIDPressureNormal' });
    expect(r.figures).toEqual({
      tasks: 1024,
      running: 3,
      pidMax: 32768,
      threadsMax: 8192,
      pidUsedPercent: 3.13,
      threadsUsedPercent: 12.5,
    });
    expect(r.message).toBe('1024 tasks in use: 3.1% of kernel.pid_max 32768, 12.5% of kernel.threads-max 8192 (threshold 90%)');
  });

  it('reports PIDPressureHigh when tasks near kernel.pid_max', async () => {
    await proc.write({ loadavg: '1.00 1.00 1.00 3/30000 5555\n', 'sys/kernel/threads-max': '1000000\n' });
    const r = await new PidProbe(pidConfig({ usedPercent: 90 }), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'PIDPressureHigh', figures: { pidUsedPercent: 91.55 } });
  });

  it('reports PIDPressureHigh when kernel.threads-max is the limit that is nearly reached', async () => {
    await proc.write({ loadavg: '1.00 1.00 1.00 3/7500 5555\n', 'sys/kernel/pid_max': '4194304\n' });
    const r = await new PidProbe(pidConfig({ usedPercent: 90 }), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'PIDPressureHigh', figures: { threadsUsedPercent: 91.55 } });
  });

  it('reports a read error naming /proc/loadavg when its task field is malformed', async () => {
    await proc.write({ loadavg: '1.00 1.00 1.00 many 5555\n' });
    const r = await new PidProbe(pidConfig(), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(proc.root, 'loadavg') } });
    expect(r.message).toContain('running tasks');
  });

  it('reports a read error naming kernel.pid_max when the file is missing', async () => {
    await proc.remove('sys/kernel/pid_max');
    const r = await new PidProbe(pidConfig(), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { file: join(proc.root, 'sys/kernel/pid_max') } });
  });

  it('reports a read error when kernel.threads-max is not a number', async () => {
    await proc.write({ 'sys/kernel/threads-max': 'unlimited\n' });
    const r = await new PidProbe(pidConfig(), roots()).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'ProbeReadError' });
    expect(r.message).toContain('kernel.threads-max is "unlimited"');
  });
});
