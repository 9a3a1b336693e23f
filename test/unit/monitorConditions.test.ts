import { describe, expect, it } from 'vitest';
import { ConditionEngine, type ConditionRule } from '../../agent/conditions/conditionEngine.js';
import type { ProbeResult } from '../../agent/probes/probe.js';

/** A kernel-log condition as the kernel monitor declares it: raised by one line, cleared by evidence only. */
const deadlock: ConditionRule = {
  type: 'KernelDeadlock',
  probe: 'kernel/KernelDeadlock',
  failureThreshold: 1,
  recoveryThreshold: 1,
  initial: { reason: 'KernelHasNoDeadlock', message: 'kernel has no deadlock' },
  bootScoped: true,
};
const boot = { bootId: 'b0000000-0000-4000-8000-000000000002', startedAt: 50_000 };
const earlierBoot = 'a0000000-0000-4000-8000-000000000001';

const line = (at: number, reason = 'DockerHung', extra: Partial<ProbeResult> = {}): ProbeResult => ({
  probe: 'kernel/KernelDeadlock',
  at,
  durationMs: 0,
  healthy: false,
  reason,
  message: `task docker:123 blocked for more than 120 seconds. (${reason} at ${at})`,
  figures: {},
  ...extra,
});

describe('monitor conditions in the condition engine', () => {
  it("start False with the rule file's healthy reason and message (NPD's conditions[] default)", () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    expect(engine.get('KernelDeadlock')).toMatchObject({ status: 'False', reason: 'KernelHasNoDeadlock', message: 'kernel has no deadlock' });
  });

  it('turn True on the first matching line, the message tagged with this boot', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    const seen = engine.observe(line(60_000));
    expect(seen?.condition).toMatchObject({ status: 'True', reason: 'DockerHung', lastTransitionTime: 60_000 });
    expect(seen?.condition.message).toMatch(/ \[boot b0000000-0000-4000-8000-000000000002\]$/);
    expect(seen?.events).toEqual([expect.objectContaining({ kind: 'transition', severity: 'Warning', reason: 'DockerHung' })]);
  });

  it('move lastTransitionTime only when the status moves, not when the reason changes (Karpenter #2833)', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    engine.observe(line(60_000, 'DockerHung'));
    const flipped = engine.observe(line(70_000, 'AUFSUmountHung'));
    expect(flipped?.condition).toMatchObject({ status: 'True', reason: 'AUFSUmountHung', lastTransitionTime: 60_000 });
    expect(flipped?.events).toEqual([]);
  });

  it('clear a condition adopted from an earlier boot, saying so in the reason (ClearedByReboot)', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    engine.adopt({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: `task docker:1 blocked [boot ${earlierBoot}]`, lastTransitionTime: 10_000 });
    const [cleared, ...rest] = engine.clearEarlierBoots(80_000);
    expect(rest).toEqual([]);
    expect(cleared?.condition).toMatchObject({ status: 'False', reason: 'ClearedByReboot', lastTransitionTime: 80_000 });
    expect(cleared?.condition.message).toContain(earlierBoot);
    expect(cleared?.events).toEqual([expect.objectContaining({ kind: 'transition', severity: 'Normal', reason: 'ClearedByReboot' })]);
  });

  it('keep a condition adopted from this same boot (an agent restart is no reboot)', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    engine.adopt({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: `task docker:1 blocked [boot ${boot.bootId}]`, lastTransitionTime: 60_000 });
    expect(engine.clearEarlierBoots(80_000)).toEqual([]);
    expect(engine.get('KernelDeadlock')?.status).toBe('True');
  });

  it("clear one NPD wrote (no boot ID in it) when it turned True before this boot started, and keep one from after", () => {
    const before = new ConditionEngine([deadlock], 0, boot);
    before.adopt({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'task docker:1 blocked', lastTransitionTime: boot.startedAt - 1 });
    expect(before.clearEarlierBoots(80_000).map((o) => o.condition.reason)).toEqual(['ClearedByReboot']);
    const after = new ConditionEngine([deadlock], 0, boot);
    after.adopt({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung', message: 'task docker:1 blocked', lastTransitionTime: boot.startedAt + 1 });
    expect(after.clearEarlierBoots(80_000)).toEqual([]);
  });

  it('clear after clearAfterSeconds without a matching line, and not before', () => {
    const engine = new ConditionEngine([{ ...deadlock, clearAfterMs: 60_000 }], 0, boot);
    engine.observe(line(100_000));
    engine.observe(line(130_000));
    expect(engine.expire(189_999)).toEqual([]);
    const [cleared] = engine.expire(190_000);
    expect(cleared?.condition).toMatchObject({ status: 'False', reason: 'ClearedAfterQuietPeriod', lastTransitionTime: 190_000 });
  });

  it('never clear without clearAfterSeconds: only evidence clears (no recovery samples exist for a log line)', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    engine.observe(line(100_000));
    expect(engine.expire(100_000 + 365 * 86_400_000)).toEqual([]);
  });

  it('do not count a replayed line again when the adopted state already holds it (not newer than its transition)', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    // Cleared at 70.4 s by the previous agent; the API keeps 70 s.
    engine.adopt({ type: 'KernelDeadlock', status: 'False', reason: 'RemountedReadWrite', message: 'cleared', lastTransitionTime: 70_000 });
    expect(engine.observe(line(60_000, 'DockerHung', { replayed: true }))).toBeUndefined();
    expect(engine.observe(line(70_300, 'DockerHung', { replayed: true }))).toBeUndefined();
    expect(engine.observe(line(71_000, 'DockerHung', { replayed: true }))?.condition.status).toBe('True');
  });

  it('know by the kernel sequence number in the boot tag what the adopted state holds, whatever the clocks say', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    engine.adopt({ type: 'KernelDeadlock', status: 'False', reason: 'ClearedAfterQuietPeriod', message: `cleared: no recurrence; it was: task docker:1 blocked [boot ${boot.bootId} seq 50]`, lastTransitionTime: 999_000 });
    // Dated after the transition by this agent's clock, but record 50 is the one the Node already holds.
    expect(engine.observe(line(1_500_000, 'DockerHung', { replayed: true, seq: 50 }))).toBeUndefined();
    const newer = engine.observe(line(900_000, 'DockerHung', { replayed: true, seq: 51 }));
    expect(newer?.condition.status).toBe('True');
    expect(newer?.condition.message).toMatch(/\[boot b0000000-0000-4000-8000-000000000002 seq 51\]$/);
  });

  it('apply a replayed line when nothing was adopted (the problem was logged while no agent ran)', () => {
    const engine = new ConditionEngine([deadlock], 100_000, boot);
    expect(engine.observe(line(60_000, 'DockerHung', { replayed: true }))?.condition.status).toBe('True');
  });

  it("report a replayed one-off problem only when the previous agent had not written the Node since it was logged", () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    engine.adopt({ type: 'KernelDeadlock', status: 'False', reason: 'KernelHasNoDeadlock', message: '', lastTransitionTime: 1000 }, 90_000);
    const oom = (at: number): ProbeResult => ({ probe: 'kernel', temporary: true, replayed: true, at, durationMs: 0, healthy: false, reason: 'OOMKilling', message: 'Killed process 1', figures: {} });
    expect(engine.oneOff(oom(89_000))).toBeUndefined();
    const reported = engine.oneOff(oom(91_000));
    expect(reported).toMatchObject({ kind: 'temporary', severity: 'Warning', reason: 'OOMKilling' });
    expect(reported?.conditionType).toBeUndefined();
    expect(engine.oneOff({ ...oom(10), replayed: false })).toBeDefined();
  });

  it('go Unknown when the monitor cannot read the log, never True', () => {
    const engine = new ConditionEngine([deadlock], 0, boot);
    const fault = engine.observe({ ...line(1000), reason: 'ProbeReadError', message: 'cannot read /dev/kmsg: EPERM' });
    expect(fault?.condition).toMatchObject({ status: 'Unknown', reason: 'ProbeReadError' });
    expect(fault?.condition.message).not.toContain('[boot');
  });

  it('refuse two sources owning one condition', () => {
    expect(() => new ConditionEngine([deadlock, { ...deadlock, probe: 'other/KernelDeadlock' }], 0)).toThrow(/owned by two sources/);
  });
});
