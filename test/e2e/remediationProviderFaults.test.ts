import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controllerEventReasons, keys, stepEventReason } from '../../common/contract.js';
import { testCluster } from '../cluster/testCluster.js';
import type { ArmBehaviour } from '../support/armStandIn.js';
import { poolLabel, RemediationHarness, sleep } from '../support/remediationHarness.js';

/**
 * The ladder against the faults cloud APIs produce, end to end: the controller as a built CLI
 * on the real API server, the ARM stand-in answering 409, 429 with Retry-After, a 500 after it
 * started the operation, a request it never answers, an operation that never finishes. What
 * an operator needs: the same step is retried, no request that may have reached ARM is sent
 * twice, and nothing more destructive follows a step whose outcome is not known.
 */
let h: RemediationHarness;

beforeAll(async () => {
  h = await RemediationHarness.start(testCluster());
});

afterEach(async () => {
  await h.reset();
});

afterAll(async () => {
  await h?.close();
});

const reboot = { start: stepEventReason('reboot', 'Start'), end: stepEventReason('reboot', 'End'), error: stepEventReason('reboot', 'Error') };

/** A pool, a leader, and node 0 NotReady with ARM answering its restart with `behaviours`. */
async function rebootAgainst(behaviours: ArmBehaviour[], overrides: Parameters<RemediationHarness['controllerConfig']>[1] = {}) {
  const { pool, names } = await h.createPool(5);
  h.arm.script(...behaviours);
  h.startReplica('replica-a', h.controllerConfig(pool, overrides));
  await h.leading('replica-a');
  const sick = names[0] ?? '';
  await h.setReady(sick, 'False');
  return sick;
}

/** The reboot ended; until then, and until its recovery wait passed, no reimage reached ARM. */
async function rebootEndedWithoutReimage(sick: string): Promise<void> {
  await h.eventually('NodeRebootEnd', async () => ((await h.reasonsOf(sick)).includes(reboot.end) ? true : undefined), 40_000);
  expect(h.arm.posts('0', 'reimage')).toBe(0);
  expect(h.arm.started('0', 'restart')).toBe(1);
}

describe('the ladder against cloud API faults', () => {
  it('a 409 (another operation in progress) is retried as the same reboot, which then ends: no error, no reimage', async () => {
    const sick = await rebootAgainst([{ kind: 'conflict', retryAfter: 1 }, { kind: 'accepted', polls: 1 }]);
    await rebootEndedWithoutReimage(sick);
    expect(h.arm.posts('0', 'restart')).toBe(2);
    expect(await h.reasonsOf(sick)).toEqual([reboot.start, reboot.end]);
  });

  it('429 with Retry-After is waited out and retried as the same reboot', async () => {
    const sick = await rebootAgainst([
      { kind: 'throttle', retryAfter: 2 },
      { kind: 'throttle', retryAfter: 1 },
      { kind: 'ok' },
    ]);
    const startedAt = Date.now();
    await rebootEndedWithoutReimage(sick);
    // Two Retry-After waits (2 s + 1 s) lie between the first POST and the end.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(3000);
    expect(h.arm.posts('0', 'restart')).toBe(3);
    expect(await h.reasonsOf(sick)).toEqual([reboot.start, reboot.end]);
  });

  it('a 500 after ARM started the restart is never sent again: the controller asks ARM, sees it finish, and ends the reboot', async () => {
    const sick = await rebootAgainst([{ kind: 'accepted-then-error', status: 500, polls: 2 }]);
    await rebootEndedWithoutReimage(sick);
    expect(h.arm.posts('0', 'restart')).toBe(1);
    expect(h.arm.calls.some((c) => c.method === 'GET' && c.path.endsWith('/virtualMachines/0/instanceView'))).toBe(true);
  });

  it('a restart request ARM accepted but never answered is never sent again either', async () => {
    const sick = await rebootAgainst([{ kind: 'accepted-then-hang', polls: 1 }], { azure: { requestTimeoutSeconds: 2 } });
    await rebootEndedWithoutReimage(sick);
    expect(h.arm.posts('0', 'restart')).toBe(1);
  });

  it('an operation that never finishes makes the reboot inconclusive, retried by asking ARM, and never followed by a reimage', async () => {
    const sick = await rebootAgainst([{ kind: 'accepted', polls: Number.POSITIVE_INFINITY, retryAfter: 1 }], { stepTimeoutSeconds: 4, retryDelaySeconds: 1 });
    const errors = await h.eventually('two inconclusive NodeRebootError events', async () => {
      const e = (await h.eventsOf(sick)).filter((x) => x.reason === reboot.error);
      return e.length >= 2 ? e : undefined;
    }, 40_000);
    expect(errors[0]?.message).toContain('so the same step is tried again after 1s and nothing more destructive follows from it');
    await sleep(2000);
    expect(h.arm.posts('0', 'restart')).toBe(1);
    expect(h.arm.posts('0', 'reimage')).toBe(0);
    expect(h.arm.calls.filter((c) => c.method === 'POST' && c.action !== 'restart')).toEqual([]);
    const reasons = await h.reasonsOf(sick);
    expect(reasons.filter((r) => r !== reboot.start && r !== reboot.error)).toEqual([]);
  });

  it('a node that is not a scale set instance gets one Error and is handed to a person: no rounds burnt, nothing sent to ARM', async () => {
    const { pool } = await h.createPool(4);
    const name = `np-e2e-${pool}-byo`;
    await h.admin.createNode({ body: { metadata: { name, labels: { [poolLabel]: pool, 'kubernetes.io/os': 'linux' } }, spec: { providerID: 'kind://docker/kind/kind-worker' } } });
    h.adopt(name);
    await h.setReady(name, 'True');
    h.startReplica('replica-a', h.controllerConfig(pool));
    await h.leading('replica-a');
    await h.setReady(name, 'False');
    await h.eventually('NodeRemediationNeedsHuman', async () => ((await h.reasonsOf(name)).includes(controllerEventReasons.needsHuman) ? true : undefined), 20_000);
    await sleep(3000);
    const events = await h.eventsOf(name);
    expect(events.map((e) => e.reason)).toEqual([reboot.start, reboot.error, controllerEventReasons.needsHuman]);
    expect(events[1]?.message).toMatch(/^Reboot failed: NotAScaleSetInstance: .*; this can never succeed on this node, so nothing else is tried$/);
    expect(h.arm.calls).toEqual([]);
    const node = await h.admin.readNode({ name });
    expect(node.metadata?.labels?.[keys.needsHuman]).toBe('true');
  });

  it('the ladder moves on to the reimage only after a reboot that completed and left the node unhealthy', async () => {
    const sick = await rebootAgainst([{ kind: 'conflict' }, { kind: 'accepted', polls: 2 }, { kind: 'accepted', polls: 1 }]);
    await rebootEndedWithoutReimage(sick);
    await h.eventually('NodeReimageEnd', async () => ((await h.reasonsOf(sick)).includes(stepEventReason('reimage', 'End')) ? true : undefined), 30_000);
    const events = await h.eventsOf(sick);
    const rebootEnd = events.findIndex((e) => e.reason === reboot.end);
    const reimageStart = events.findIndex((e) => e.reason === stepEventReason('reimage', 'Start'));
    expect(rebootEnd).toBeGreaterThanOrEqual(0);
    expect(reimageStart).toBeGreaterThan(rebootEnd);
    expect(h.arm.started('0', 'reimage')).toBe(1);
  });
});
