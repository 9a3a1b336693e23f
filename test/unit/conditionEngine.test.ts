import { describe, expect, it } from 'vitest';
import { ConditionEngine } from '../../agent/conditions/conditionEngine.js';
import type { ProbeResult } from '../../agent/probes/probe.js';
import { jsonLogger } from '../../common/log.js';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { ProbeLoop } from '../../agent/probeLoop.js';
import { buildProbes } from '../../agent/probes/registry.js';
import { conditionTypeByProbe, type ProbeName } from '../../common/contract.js';

const rule = { type: 'DNSProblem' as const, probe: 'dns', failureThreshold: 3, recoveryThreshold: 2 };

function sample(at: number, healthy: boolean, reason = healthy ? 'DNSHealthy' : 'ClusterDNSTimeout'): ProbeResult {
  return { probe: 'dns', at, durationMs: 1, healthy, reason, message: `${reason} at ${at}`, figures: {} };
}

describe('condition engine hysteresis', () => {
  it('starts every enabled check as False so describe node shows the check exists', () => {
    const engine = new ConditionEngine([rule], 0);
    expect(engine.list()).toEqual([expect.objectContaining({ type: 'DNSProblem', status: 'False', reason: 'NoProblemYet' })]);
  });

  it('does not raise the condition on bad samples below the failure threshold, but reports a temporary problem once', () => {
    const engine = new ConditionEngine([rule], 0);
    const first = engine.observe(sample(1, false));
    const second = engine.observe(sample(2, false));
    expect(first?.condition.status).toBe('False');
    expect(first?.events).toEqual([expect.objectContaining({ kind: 'temporary', severity: 'Warning', reason: 'ClusterDNSTimeout' })]);
    expect(second?.events).toEqual([]);
    expect(second?.changed).toBe(false);
  });

  it('raises the condition on the Nth consecutive bad sample with the probe reason and keeps its transition time', () => {
    const engine = new ConditionEngine([rule], 0);
    engine.observe(sample(1, false));
    engine.observe(sample(2, false));
    const third = engine.observe(sample(3, false));
    expect(third?.changed).toBe(true);
    expect(third?.condition).toMatchObject({ status: 'True', reason: 'ClusterDNSTimeout', lastTransitionTime: 3 });
    expect(third?.events).toEqual([expect.objectContaining({ kind: 'transition', severity: 'Warning' })]);
    const fourth = engine.observe(sample(4, false));
    expect(fourth?.changed).toBe(false);
    expect(fourth?.condition.lastTransitionTime).toBe(3);
    expect(fourth?.condition.message).toBe('ClusterDNSTimeout at 4');
  });

  it('a good sample in the middle of a bad streak starts the count again', () => {
    const engine = new ConditionEngine([rule], 0);
    engine.observe(sample(1, false));
    engine.observe(sample(2, false));
    engine.observe(sample(3, true));
    engine.observe(sample(4, false));
    expect(engine.observe(sample(5, false))?.condition.status).toBe('False');
    expect(engine.observe(sample(6, false))?.condition.status).toBe('True');
  });

  it('clears the condition only after the recovery threshold of good samples', () => {
    const engine = new ConditionEngine([rule], 0);
    for (let t = 1; t <= 3; t++) engine.observe(sample(t, false));
    expect(engine.observe(sample(4, true))?.condition.status).toBe('True');
    const cleared = engine.observe(sample(5, true));
    expect(cleared?.condition).toMatchObject({ status: 'False', reason: 'DNSHealthy', lastTransitionTime: 5 });
    expect(cleared?.events).toEqual([expect.objectContaining({ kind: 'transition', severity: 'Normal', reason: 'DNSHealthy' })]);
  });

  it('a changed problem reason while True counts as a change to publish', () => {
    const engine = new ConditionEngine([rule], 0);
    for (let t = 1; t <= 3; t++) engine.observe(sample(t, false));
    const servfail = engine.observe(sample(4, false, 'ClusterDNSServfail'));
    expect(servfail).toMatchObject({ changed: true, events: [] });
    expect(servfail?.condition).toMatchObject({ status: 'True', reason: 'ClusterDNSServfail', lastTransitionTime: 3 });
  });

  it('a probe that keeps failing to run turns the condition Unknown, and one good sample restores it', () => {
    const engine = new ConditionEngine([rule], 0);
    for (let t = 1; t <= 3; t++) engine.observe(sample(t, false, 'ProbeError'));
    expect(engine.get('DNSProblem')).toMatchObject({ status: 'Unknown', reason: 'ProbeError' });
    expect(engine.observe(sample(4, true))?.condition).toMatchObject({ status: 'False', reason: 'DNSHealthy' });
  });

  it('a /proc or /sys file the agent cannot read turns the condition Unknown naming the file, never True', () => {
    const engine = new ConditionEngine([rule], 0);
    const unreadable = (at: number) => ({ ...sample(at, false, 'ProbeReadError'), message: 'cannot use /host/proc/pressure/cpu: ENOENT' });
    for (let t = 1; t <= 2; t++) expect(engine.observe(unreadable(t))?.condition.status).toBe('False');
    expect(engine.observe(unreadable(3))?.condition).toMatchObject({ status: 'Unknown', reason: 'ProbeReadError', message: 'cannot use /host/proc/pressure/cpu: ENOENT' });
    expect(engine.observe(unreadable(4))?.condition.status).toBe('Unknown');
  });

  it('a real problem whose source becomes unreadable goes Unknown, not True with a read error', () => {
    const engine = new ConditionEngine([rule], 0);
    for (let t = 1; t <= 3; t++) engine.observe(sample(t, false));
    for (let t = 4; t <= 6; t++) engine.observe(sample(t, false, 'ProbeReadError'));
    expect(engine.get('DNSProblem')).toMatchObject({ status: 'Unknown', reason: 'ProbeReadError' });
  });

  it('with a wrong procRoot every probe that reads /proc reports Unknown with the file it could not read', async () => {
    const procRoot = '/nonexistent/nodepulse-proc';
    const off = { enabled: false };
    const config = agentConfigSchema.parse({
      procRoot,
      sysRoot: '/nonexistent/nodepulse-sys',
      probes: { dns: off, kubelet: off, konnectivity: off, diskSpace: off },
    });
    const { probes } = buildProbes(config);
    const rules = probes.map((p) => ({ type: conditionTypeByProbe[p.name as ProbeName], probe: p.name, failureThreshold: 1, recoveryThreshold: 1 }));
    const engine = new ConditionEngine(rules, 0);
    const loop = new ProbeLoop(probes, engine, jsonLogger({ level: 'silent' }));
    await Promise.all(probes.map((p) => loop.sample(p)));
    expect(probes.map((p) => p.name).sort()).toEqual(['cpu', 'diskIO', 'memory', 'pid']);
    for (const condition of engine.list()) {
      expect(condition).toMatchObject({ status: 'Unknown', reason: 'ProbeReadError' });
      expect(condition.message).toMatch(new RegExp(`^cannot use ${procRoot}/\\S+: .*the agent cannot see this node's state`));
    }
    loop.stop();
  });

  it('adopts the condition found on the node after a restart, without a spurious transition', () => {
    const engine = new ConditionEngine([rule], 100);
    engine.adopt({ type: 'DNSProblem', status: 'True', reason: 'ClusterDNSTimeout', message: 'old', lastTransitionTime: 50 });
    const next = engine.observe(sample(101, false));
    expect(next).toMatchObject({ changed: false, events: [] });
    expect(next?.condition.lastTransitionTime).toBe(50);
  });

  it('ignores conditions and results it does not own', () => {
    const engine = new ConditionEngine([rule], 0);
    engine.adopt({ type: 'KubeletProblem', status: 'True', reason: 'X', message: '', lastTransitionTime: 0 });
    expect(engine.list().map((c) => c.type)).toEqual(['DNSProblem']);
    expect(engine.observe({ ...sample(1, false), probe: 'cpu' })).toBeUndefined();
  });
});
