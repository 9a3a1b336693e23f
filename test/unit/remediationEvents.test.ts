import { describe, expect, it } from 'vitest';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { startStep } from '../../controller/remediationState.js';
import {
  heldBackEvent,
  needsHumanEvent,
  stepEndEvent,
  stepErrorEvent,
  stepStartEvent,
  type EventContext,
} from '../../controller/remediationEvents.js';

const now = new Date('2026-03-02T08:15:00Z');
const ctx = (overrides: Record<string, unknown> = {}): EventContext => ({
  node: { name: 'aks-nodepool1-12345678-vmss000003', uid: 'uid-3' },
  config: controllerConfigSchema.parse(overrides),
  instance: 'nodepulse-controller-7d9f-abcde',
  now,
});
const start = (step: 'reboot' | 'reimage' | 'redeploy', why: string) => ({
  kind: 'start' as const,
  step,
  attempt: 1,
  why,
  state: startStep(undefined, step, 1, now.getTime()),
});

describe('remediation events on the Node', () => {
  it.each([
    ['reboot', 'NodeRebootStart', 'NodeRebootEnd', 'NodeRebootError'],
    ['reimage', 'NodeReimageStart', 'NodeReimageEnd', 'NodeReimageError'],
    ['redeploy', 'NodeRedeployStart', 'NodeRedeployEnd', 'NodeRedeployError'],
  ] as const)('%s uses the AKS reasons %s, %s and %s', (step, startReason, endReason, errorReason) => {
    expect(stepStartEvent(ctx(), start(step, 'x'), false).reason).toBe(startReason);
    expect(stepEndEvent(ctx(), step, now.getTime(), { ok: true, detail: 'done' }).reason).toBe(endReason);
    expect(stepErrorEvent(ctx(), step, now.getTime(), { code: 'C', message: 'm' }).reason).toBe(errorReason);
  });

  it('names each ladder event by its node, its step start and its reason, so a successor writing it again makes no second event', () => {
    const decision = start('reboot', 'x');
    const first = stepStartEvent(ctx(), decision, false);
    const again = stepStartEvent({ ...ctx(), instance: 'another-replica', now: new Date(now.getTime() + 60_000) }, decision, false);
    expect(first.metadata?.name).toBe(again.metadata?.name);
    expect(first.metadata?.name).toBe(`aks-nodepool1-12345678-vmss000003.ladder-${now.getTime().toString(16)}.noderebootstart`);
    const end = stepEndEvent(ctx(), 'reboot', now.getTime(), { ok: true, detail: 'done' });
    const error = stepErrorEvent(ctx(), 'reboot', now.getTime(), { code: 'C', message: 'm' });
    expect(new Set([first.metadata?.name, end.metadata?.name, error.metadata?.name]).size).toBe(3);
    expect(stepEndEvent(ctx(), 'reboot', now.getTime() + 1, { ok: true, detail: 'done' }).metadata?.name).not.toBe(end.metadata?.name);
  });

  it('says why the reboot started and where it stands in the sequence', () => {
    const e = stepStartEvent(ctx(), start('reboot', 'Ready=False persisted 15m, unhealthy for 5m'), false);
    expect(e).toMatchObject({
      type: 'Normal',
      message: 'Reboot started because Ready=False persisted 15m, unhealthy for 5m; first step of the sequence (attempt 1 of 3)',
      involvedObject: { kind: 'Node', name: 'aks-nodepool1-12345678-vmss000003', uid: 'uid-3' },
      metadata: { namespace: 'default' },
    });
    expect(stepStartEvent(ctx(), start('redeploy', 'the node is still unhealthy after reimage'), false).message).toContain('last step of the sequence');
  });

  it('a dry run says nothing is done', () => {
    expect(stepStartEvent(ctx(), start('reboot', 'x'), true).message).toMatch(/\[dry run: nothing is done\]$/);
  });

  it('an End event says nothing about health', () => {
    const e = stepEndEvent(ctx(), 'reboot', now.getTime(), { ok: true, detail: 'restart of scale set v instance 3 succeeded' });
    expect(e.message).toBe(
      "Reboot finished: restart of scale set v instance 3 succeeded. This says nothing about the node's health, which is checked over the next 5m",
    );
  });

  it('an Error event carries the provider\'s error code verbatim', () => {
    const e = stepErrorEvent(ctx(), 'reboot', now.getTime(), { code: 'AuthorizationFailed', message: "The client 'x' does not have authorization" });
    expect(e).toMatchObject({ type: 'Warning', message: "Reboot failed: AuthorizationFailed: The client 'x' does not have authorization" });
  });

  it('an inconclusive step says it is tried again and that nothing more destructive follows', () => {
    const e = stepErrorEvent(ctx(), 'reboot', now.getTime(), { code: 'OperationNotAllowed', message: 'another operation is in progress' }, 'inconclusive');
    expect(e.reason).toBe('NodeRebootError');
    expect(e.message).toBe(
      'Reboot failed: OperationNotAllowed: another operation is in progress; its outcome could not be established, so the same step is tried again after 1m and nothing more destructive follows from it',
    );
  });

  it('a step that can never succeed says nothing else is tried', () => {
    const e = stepErrorEvent(ctx(), 'reboot', now.getTime(), { code: 'NotAScaleSetInstance', message: 'spec.providerID is not a VM scale set instance' }, 'permanent');
    expect(e.message).toContain('this can never succeed on this node, so nothing else is tried');
  });

  it('reports as the configured component and instance', () => {
    const e = stepStartEvent(ctx({ events: { reportingComponent: 'aks-remediator', reportingInstance: 'replica-a' } }), start('reboot', 'x'), false);
    expect(e).toMatchObject({ source: { component: 'aks-remediator', host: 'replica-a' }, reportingComponent: 'aks-remediator', reportingInstance: 'replica-a' });
    expect(stepStartEvent(ctx(), start('reboot', 'x'), false)).toMatchObject({
      reportingComponent: 'nodepulse-controller',
      reportingInstance: 'nodepulse-controller-7d9f-abcde',
    });
  });

  it('says why nothing starts when the circuit breaker is open', () => {
    const e = heldBackEvent(ctx(), { kind: 'skip', rule: 'circuit-breaker', why: 'circuit breaker open: 3 of 5 nodes are unhealthy' });
    expect(e).toMatchObject({ type: 'Warning', reason: 'NodeRemediationSkipped', message: 'Not remediating (circuit-breaker): circuit breaker open: 3 of 5 nodes are unhealthy' });
  });

  it('tells a person when the ladder gave up', () => {
    const state = { ...startStep(undefined, 'reimage', 3, now.getTime()), phase: 'needs-human' as const, reason: 'r' };
    const e = needsHumanEvent(ctx(), { kind: 'needs-human', why: 'past its 1h bound', state });
    expect(e).toMatchObject({ type: 'Warning', reason: 'NodeRemediationNeedsHuman', message: expect.stringContaining('label nodepulse.io/needs-human=true') });
  });
});
