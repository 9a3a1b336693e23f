import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { AgentProvider, type NodeAnnotator, type NodeApiError, type NodeReader } from '../../controller/providers/agentProvider.js';
import { DryRunProvider } from '../../controller/providers/dryRunProvider.js';
import { runStep } from '../../controller/providers/provider.js';
import { runStepToOutcome } from '../../controller/stepRunner.js';
import { fakeTime } from '../support/fakeTime.js';

const BOOT_A = '5b2c1e4a-8f0d-4c1b-9a7e-0d3f6b2a1c11';
const BOOT_B = 'e7a9d3c2-1b4f-4e6a-8c5d-2f1a0b9c8d22';
const ANNOTATION = 'nodepulse.io/reboot-request';
const target = { name: 'node-a', uid: 'u-a', providerID: 'azure:///subscriptions/x/virtualMachines/1', bootID: BOOT_A };
const signal = AbortSignal.timeout(5_000);

describe('dry-run provider', () => {
  it.each(['reboot', 'reimage', 'redeploy'] as const)('%s does nothing and says what it would have done', async (step) => {
    const result = await runStep(new DryRunProvider(), step, target, signal);
    expect(result).toMatchObject({ ok: true, dryRun: true, detail: expect.stringMatching(/^dry run: would have \w+ node node-a .*nothing was done$/) });
  });

  it('a dry-run step found under way has ended: there was nothing to wait for', async () => {
    expect(await new DryRunProvider().inspect()).toEqual({ state: 'succeeded', detail: 'dry run: nothing was done' });
  });
});

/** A Node as the API server holds it: its boot ID and annotations, changed by the test as a kubelet or the provider would. */
function fakeNode(bootID = BOOT_A) {
  const node: V1Node = { metadata: { name: 'node-a', annotations: {} }, status: { nodeInfo: { bootID } as NonNullable<V1Node['status']>['nodeInfo'] } };
  const writes: Array<Record<string, string>> = [];
  const annotate: NodeAnnotator = async (_name, annotations) => {
    writes.push(annotations);
    Object.assign(node.metadata?.annotations ?? {}, annotations);
  };
  const read: NodeReader = async () => structuredClone(node);
  const reboot = (newBoot: string) => {
    if (node.status?.nodeInfo) node.status.nodeInfo.bootID = newBoot;
  };
  return { node, writes, annotate, read, reboot };
}

const apiError = (message: string, status?: number, reason?: string): NodeApiError => Object.assign(new Error(message), status === undefined ? {} : { status }, reason ? { reason } : {});

describe('agent provider', () => {
  it("asks the node's own agent to reboot the boot it saw, through the request annotation", async () => {
    const api = fakeNode();
    const agent = new AgentProvider(api.annotate, api.read, ANNOTATION);
    expect(await agent.reboot(target, signal)).toEqual({ ok: true, detail: `asked the node's agent to reboot boot ${BOOT_A} (${ANNOTATION}=${BOOT_A})` });
    expect(api.writes).toEqual([{ [ANNOTATION]: BOOT_A }]);
  });

  it('refuses for good a node that reports no boot ID', async () => {
    const api = fakeNode();
    const agent = new AgentProvider(api.annotate, api.read, ANNOTATION);
    expect(await agent.reboot({ name: 'node-a', uid: 'u-a' }, signal)).toMatchObject({ ok: false, code: 'NoBootID', class: 'permanent' });
    expect(api.writes).toEqual([]);
  });

  it('reimage and redeploy are permanent NotSupported, so the ladder asks a human instead of burning rounds', async () => {
    const api = fakeNode();
    const agent = new AgentProvider(api.annotate, api.read, ANNOTATION);
    for (const step of ['reimage', 'redeploy'] as const) {
      const expected = { ok: false, code: 'NotSupported', message: `the agent provider can only reboot a node; ${step} needs a cloud provider (provider.type: azure)`, class: 'permanent' };
      expect(await runStep(agent, step, target, signal)).toEqual(expected);
      expect(await agent.inspect(step, target, 0, signal)).toEqual({ state: 'failed', failure: expected });
    }
  });

  it.each([
    ['a refusal (403 Forbidden) is permanent', apiError('nodes "node-a" is forbidden', 403, 'Forbidden'), 'Forbidden', 'permanent'],
    ['a conflict is transient', apiError('conflict', 409, 'Conflict'), 'Conflict', 'transient'],
    ['no answer may have landed: unknown', apiError('socket hang up'), 'RebootRequestFailed', 'unknown'],
    ['a 500 may have landed: unknown', apiError('etcdserver: request timed out', 500, 'InternalError'), 'InternalError', 'unknown'],
  ])("a failed annotation write: %s, with the API server's reason", async (_name, error, code, failureClass) => {
    const agent = new AgentProvider(() => Promise.reject(error), fakeNode().read, ANNOTATION);
    expect(await agent.reboot(target, signal)).toEqual({ ok: false, code, message: `could not set ${ANNOTATION}: ${error.message}`, class: failureClass });
  });

  it('inspect(): no request is not-started, the request for this boot is running, a new boot ID is succeeded', async () => {
    const api = fakeNode();
    const agent = new AgentProvider(api.annotate, api.read, ANNOTATION);
    expect(await agent.inspect('reboot', target, 0, signal)).toMatchObject({ state: 'not-started' });
    await agent.reboot(target, signal);
    expect(await agent.inspect('reboot', target, 0, signal)).toMatchObject({ state: 'running' });
    api.reboot(BOOT_B);
    expect(await agent.inspect('reboot', target, 0, signal)).toEqual({ state: 'succeeded', detail: `the node booted again: boot ID ${BOOT_A} -> ${BOOT_B}` });
  });

  it('inspect(): a request left for an earlier boot is not this step: not-started', async () => {
    const api = fakeNode(BOOT_B);
    await api.annotate('node-a', { [ANNOTATION]: BOOT_A }, signal);
    const agent = new AgentProvider(api.annotate, api.read, ANNOTATION);
    expect(await agent.inspect('reboot', { ...target, bootID: BOOT_B }, 0, signal)).toMatchObject({ state: 'not-started' });
  });

  it('inspect(): a Node that cannot be read now is asked again (transient); one that is gone is permanent', async () => {
    const unreadable = new AgentProvider(fakeNode().annotate, () => Promise.reject(apiError('connect ECONNREFUSED')), ANNOTATION);
    expect(await unreadable.inspect('reboot', target, 0, signal)).toMatchObject({ state: 'failed', failure: { code: 'NodeReadFailed', class: 'transient' } });
    const gone = new AgentProvider(fakeNode().annotate, () => Promise.reject(apiError('nodes "node-a" not found', 404, 'NotFound')), ANNOTATION);
    expect(await gone.inspect('reboot', target, 0, signal)).toMatchObject({ state: 'failed', failure: { code: 'NotFound', class: 'permanent' } });
  });

  it('a write that timed out but landed is followed to the reboot by the boot ID, not written again', async () => {
    const api = fakeNode();
    const time = fakeTime();
    let looks = 0;
    const annotate: NodeAnnotator = async (name, annotations, s) => {
      await api.annotate(name, annotations, s);
      throw apiError('the server was unable to return a response in the time allotted', 504, 'Timeout');
    };
    const read: NodeReader = async (name, s) => {
      looks += 1;
      // The agent reboots the host while the controller is looking.
      if (looks === 2) api.reboot(BOOT_B);
      return api.read(name, s);
    };
    const agent = new AgentProvider(annotate, read, ANNOTATION);
    const outcome = await runStepToOutcome(agent, 'reboot', target, { signal, budgetMs: 600_000, now: time.now, sleep: time.sleep, timeout: time.timeout, random: () => 0.5 });
    expect(outcome).toEqual({ kind: 'ended', detail: `the node booted again: boot ID ${BOOT_A} -> ${BOOT_B}` });
    expect(api.writes).toHaveLength(1);
  });
});
