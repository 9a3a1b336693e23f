import { describe, expect, it } from 'vitest';
import { AgentProvider } from '../../controller/providers/agentProvider.js';
import { DryRunProvider } from '../../controller/providers/dryRunProvider.js';
import { runStep } from '../../controller/providers/provider.js';

const target = { name: 'node-a', uid: 'u-a', providerID: 'azure:///subscriptions/x/virtualMachines/1' };
const signal = AbortSignal.timeout(5_000);

describe('dry-run provider', () => {
  it.each(['reboot', 'reimage', 'redeploy'] as const)('%s does nothing and says what it would have done', async (step) => {
    const result = await runStep(new DryRunProvider(), step, target, signal);
    expect(result).toMatchObject({ ok: true, dryRun: true, detail: expect.stringMatching(/^dry run: would have \w+ node node-a .*nothing was done$/) });
  });
});

describe('agent provider', () => {
  const now = () => Date.parse('2026-03-02T08:15:00Z');

  it('asks the node\'s own agent to reboot through the request annotation', async () => {
    const requests: Array<[string, Record<string, string>]> = [];
    const agent = new AgentProvider(async (name, annotations) => void requests.push([name, annotations]), 'nodepulse.io/reboot-request', now);
    expect(await agent.reboot(target, signal)).toEqual({
      ok: true,
      detail: "asked the node's agent to reboot (nodepulse.io/reboot-request=2026-03-02T08:15:00.000Z)",
    });
    expect(requests).toEqual([['node-a', { 'nodepulse.io/reboot-request': '2026-03-02T08:15:00.000Z' }]]);
  });

  it('reports reimage and redeploy as not supported, so the ladder records an error and moves on', async () => {
    const agent = new AgentProvider(async () => undefined, 'nodepulse.io/reboot-request', now);
    for (const step of ['reimage', 'redeploy'] as const) {
      expect(await runStep(agent, step, target, signal)).toEqual({
        ok: false,
        code: 'NotSupported',
        message: `the agent provider can only reboot a node; ${step} needs a cloud provider (provider.type: azure)`,
      });
    }
  });

  it('a refused annotation write fails the reboot with the API server\'s reason', async () => {
    const refused = Object.assign(new Error('nodes "node-a" is forbidden'), { reason: 'Forbidden' });
    const agent = new AgentProvider(async () => Promise.reject(refused), 'nodepulse.io/reboot-request', now);
    expect(await agent.reboot(target, signal)).toEqual({
      ok: false,
      code: 'Forbidden',
      message: 'could not set nodepulse.io/reboot-request: nodes "node-a" is forbidden',
    });
  });
});
