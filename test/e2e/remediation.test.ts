import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testCluster } from '../cluster/testCluster.js';
import { serializeRemediationState, type RemediationState } from '../../controller/remediationState.js';
import { RemediationHarness, sleep } from '../support/remediationHarness.js';

/**
 * The controller end to end: built CLI processes running as the nodepulse-controller
 * ServiceAccount against the real API server, the azure provider pointed at the ARM stand-in,
 * test nodes made NotReady by patching their status as a kubelet would.
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

/** What a leader writes before it acts (and what it leaves when it dies right after). */
async function storeState(name: string, state: RemediationState): Promise<void> {
  await h.admin.patchNode(
    { name, body: { metadata: { annotations: { 'nodepulse.io/remediation-state': serializeRemediationState(state) } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

describe('the remediation controller end to end', () => {
  it('walks a NotReady node through reboot, reimage and redeploy on its own scale set instance, with the AKS events', async () => {
    const { pool, names } = await h.createPool(5);
    const replica = h.startReplica('replica-a', h.controllerConfig(pool));
    await h.leading('replica-a');
    const sick = names[0] ?? '';
    await h.setReady(sick, 'False');
    await h.eventually('NodeRedeployEnd', async () => ((await h.reasonsOf(sick)).includes('NodeRedeployEnd') ? true : undefined), 60_000);
    await replica.stop();

    const events = await h.eventsOf(sick);
    expect(events.slice(0, 6).map((e) => e.reason)).toEqual([
      'NodeRebootStart',
      'NodeRebootEnd',
      'NodeReimageStart',
      'NodeReimageEnd',
      'NodeRedeployStart',
      'NodeRedeployEnd',
    ]);
    expect(events[0]?.message).toMatch(/^Reboot started because Ready=False persisted \d+s, unhealthy for \d+s; first step of the sequence \(attempt 1 of 3\)$/);
    expect(events[0]).toMatchObject({ type: 'Normal', reportingComponent: 'nodepulse-controller', involvedObject: { kind: 'Node', name: sick } });
    expect(h.armCallsFor('0', 'restart')).toHaveLength(1);
    expect(h.armCallsFor('0', 'reimage')).toHaveLength(1);
    expect(h.armCallsFor('0', 'redeploy')).toHaveLength(1);
    expect(h.arm.actionCalls().every((c) => c.instanceId === '0')).toBe(true);
    expect(h.arm.scaleSetLevelCalls()).toEqual([]);
    expect(h.login.entraRequests.length).toBeGreaterThanOrEqual(1);
  });

  it('a node that recovers after the reboot stops there', async () => {
    const { pool, names } = await h.createPool(5);
    const replica = h.startReplica('replica-a', h.controllerConfig(pool));
    const sick = names[1] ?? '';
    await h.leading('replica-a');
    await h.setReady(sick, 'False');
    await h.eventually('NodeRebootEnd', async () => ((await h.reasonsOf(sick)).includes('NodeRebootEnd') ? true : undefined), 30_000);
    await h.setReady(sick, 'True');
    await h.eventually('NodeRemediationRecovered', async () => ((await h.reasonsOf(sick)).includes('NodeRemediationRecovered') ? true : undefined), 10_000);
    // Past the reboot's recovery wait: no reimage follows.
    await sleep(4_000);
    expect(await h.reasonsOf(sick)).toEqual(['NodeRebootStart', 'NodeRebootEnd', 'NodeRemediationRecovered']);
    expect(h.armCallsFor('1')).toHaveLength(1);
    const metrics = await h.metricsOf(replica);
    expect(metrics).toContain('nodepulse_remediation_steps_started_total{step="reboot",provider="azure"} 1');
    expect(metrics).toContain('nodepulse_remediation_steps_succeeded_total{step="reboot"} 1');
    const node = await h.admin.readNode({ name: sick });
    expect(JSON.parse(node.metadata?.annotations?.['nodepulse.io/remediation-state'] ?? '{}')).toMatchObject({ phase: 'recovered', step: 'reboot' });
  });

  it('with 3 of 5 nodes NotReady nothing starts, and the event and the metrics say why', async () => {
    const { pool, names } = await h.createPool(5);
    const replica = h.startReplica('replica-a', h.controllerConfig(pool));
    await h.leading('replica-a');
    const sick = names.slice(0, 3);
    for (const name of sick) await h.setReady(name, 'False');
    const skipped = await h.eventually(
      'a circuit-breaker event',
      async () => (await h.eventsOf(sick[0] ?? '')).find((e) => e.reason === 'NodeRemediationSkipped'),
      20_000,
    );
    expect(skipped).toMatchObject({
      type: 'Warning',
      message: 'Not remediating (circuit-breaker): circuit breaker open: 3 of 5 nodes are unhealthy, more than the 1 allowed (20% of 5, at least 1)',
    });
    await sleep(2_000);
    for (const name of sick) expect(await h.reasonsOf(name)).toEqual(['NodeRemediationSkipped']);
    expect(h.arm.calls).toEqual([]);
    const metrics = await h.metricsOf(replica);
    expect(metrics).toContain('nodepulse_remediation_circuit_breaker_open 1');
    expect(metrics).toContain('nodepulse_remediation_unhealthy_nodes 3');
    expect(metrics).toContain('nodepulse_remediation_blocked_nodes{rule="circuit-breaker"} 3');
  });

  it('a node the cluster autoscaler is deleting is skipped', async () => {
    const { pool, names } = await h.createPool(5, (i) => (i === 0 ? [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' }] : []));
    h.startReplica('replica-a', h.controllerConfig(pool));
    await h.leading('replica-a');
    const leaving = names[0] ?? '';
    await h.setReady(leaving, 'False');
    const skipped = await h.eventually(
      'a skip event',
      async () => (await h.eventsOf(leaving)).find((e) => e.reason === 'NodeRemediationSkipped'),
      20_000,
    );
    expect(skipped.message).toBe('Not remediating (to-be-deleted): taint ToBeDeletedByClusterAutoscaler: the cluster autoscaler is removing it');
    await sleep(2_000);
    expect(await h.reasonsOf(leaving)).toEqual(['NodeRemediationSkipped']);
    expect(h.arm.calls).toEqual([]);
  });

  it('killing the leader mid-reboot hands over to the second replica, which asks ARM what became of the reboot instead of sending it again, and writes its End event', async () => {
    const { pool, names } = await h.createPool(5);
    // The reboot runs a while (an operation that stays InProgress for 6 looks), so the leader dies in the middle of it.
    h.arm.script({ kind: 'accepted', polls: 6, retryAfter: 1 });
    const config = h.controllerConfig(pool, { stepTimeoutSeconds: 30 });
    const first = h.startReplica('replica-a', config);
    await h.leading('replica-a');
    h.startReplica('replica-b', config);
    const sick = names[2] ?? '';
    await h.setReady(sick, 'False');
    await h.eventually('NodeRebootStart', async () => ((await h.reasonsOf(sick)).includes('NodeRebootStart') ? true : undefined), 20_000);
    await h.eventually('the restart to reach ARM', async () => (h.armCallsFor('2', 'restart').length === 1 ? true : undefined), 10_000);
    await first.kill();

    await h.leading('replica-b');
    const ended = await h.eventually('NodeRebootEnd from replica-b', async () => (await h.eventsOf(sick)).find((e) => e.reason === 'NodeRebootEnd'), 40_000);
    expect(ended.reportingInstance).toMatch(/^replica-b_/);
    const reimage = await h.eventually('NodeReimageStart from replica-b', async () => (await h.eventsOf(sick)).find((e) => e.reason === 'NodeReimageStart'), 20_000);
    expect(reimage.reportingInstance).toMatch(/^replica-b_/);
    await h.eventually('NodeReimageEnd', async () => ((await h.reasonsOf(sick)).includes('NodeReimageEnd') ? true : undefined), 15_000);
    expect(h.arm.posts('2', 'restart')).toBe(1);
    expect(h.arm.posts('2', 'reimage')).toBe(1);
    expect((await h.reasonsOf(sick)).slice(0, 3)).toEqual(['NodeRebootStart', 'NodeRebootEnd', 'NodeReimageStart']);
  });

  it('a step its dead leader stored but never announced: the next leader writes its Start event, asks ARM, and sends it once', async () => {
    const { pool, names } = await h.createPool(5);
    const sick = names[3] ?? '';
    await h.setReady(sick, 'False');
    const startedAt = Date.now() - 2000;
    await storeState(sick, { step: 'reboot', phase: 'started', attempt: 1, sequenceStartedAt: startedAt, stepStartedAt: startedAt });
    h.startReplica('replica-a', h.controllerConfig(pool));
    await h.leading('replica-a');
    await h.eventually('NodeRebootEnd', async () => ((await h.reasonsOf(sick)).includes('NodeRebootEnd') ? true : undefined), 30_000);
    const events = await h.eventsOf(sick);
    expect(events.slice(0, 2).map((e) => e.reason)).toEqual(['NodeRebootStart', 'NodeRebootEnd']);
    expect(events[0]?.message).toContain('by a leader that stopped before recording its outcome');
    expect(h.arm.posts('3', 'restart')).toBe(1);
  });

  it('a reboot that finished while its leader died before saying so: the next leader writes its End event and sends nothing', async () => {
    const { pool, names } = await h.createPool(5);
    const sick = names[4] ?? '';
    await h.setReady(sick, 'False');
    const startedAt = Date.now() - 5000;
    await storeState(sick, { step: 'reboot', phase: 'started', attempt: 1, sequenceStartedAt: startedAt, stepStartedAt: startedAt });
    // ARM finished an operation on the instance after the step began: the restart ran.
    h.arm.setInstance('4', { provisioning: 'succeeded', time: new Date(startedAt + 3000).toISOString(), power: 'running' });
    h.startReplica('replica-a', h.controllerConfig(pool));
    await h.leading('replica-a');
    await h.eventually('NodeRebootEnd', async () => ((await h.reasonsOf(sick)).includes('NodeRebootEnd') ? true : undefined), 30_000);
    expect(h.arm.posts('4', 'restart')).toBe(0);
    const reasons = await h.reasonsOf(sick);
    expect(reasons.filter((r) => r === 'NodeRebootStart')).toHaveLength(1);
    expect(reasons.filter((r) => r === 'NodeRebootEnd')).toHaveLength(1);
  });

  it('quarantines a node with our NoSchedule taint while an agent condition is True, and lifts it when it clears', async () => {
    const { pool, names } = await h.createPool(5);
    h.startReplica('replica-a', h.controllerConfig(pool, { quarantine: { enabled: true, conditions: ['KonnectivityUnavailable'] } }));
    await h.leading('replica-a');
    const node = names[3] ?? '';
    const ourTaint = async () => (await h.admin.readNode({ name: node })).spec?.taints?.find((t) => t.key === 'nodepulse.io/quarantined');
    await h.setCondition(node, 'KonnectivityUnavailable', 'True');
    expect(await h.eventually('the quarantine taint', ourTaint, 10_000)).toMatchObject({ effect: 'NoSchedule' });
    await h.setCondition(node, 'KonnectivityUnavailable', 'False');
    await h.eventually('the taint to go', async () => ((await ourTaint()) === undefined ? true : undefined), 10_000);
    // The event follows the taint write: wait for it rather than race it.
    await h.eventually('NodeQuarantineLifted', async () => ((await h.reasonsOf(node)).includes('NodeQuarantineLifted') ? true : undefined), 10_000);
    expect(await h.reasonsOf(node)).toEqual(['NodeQuarantined', 'NodeQuarantineLifted']);
    expect(h.arm.calls).toEqual([]);
  });
});
