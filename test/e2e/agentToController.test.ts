import { fileURLToPath } from 'node:url';
import type { CoreV1Event, V1NodeCondition } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { components, conditionTypeByProbe, controllerEventReasons, keys, stepEventReason } from '../../common/contract.js';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, freeLoopbackPort } from '../support/agentProcess.js';
import { TestDnsServer } from '../support/dnsServer.js';
import { onlyProbes } from '../support/onlyProbes.js';
import { RemediationHarness, sleep } from '../support/remediationHarness.js';

/**
 * The agent and the controller together, nothing patched by the test: a real agent process
 * (the built CLI, as the nodepulse-agent ServiceAccount) probes a DNS server on loopback and
 * publishes DNSProblem on its Node; a controller replica (the built CLI, as
 * nodepulse-controller, ARM stand-in) quarantines and remediates on that condition. Killing
 * the agent leaves its last DNSProblem=True on the Node; two heartbeats later it must stop
 * driving anything.
 */
const dnsProblem = conditionTypeByProbe.dns;
/** The dns check's name; the probe names a failing check in its reason (`ClusterDNSServfail`). */
const checkName = 'ClusterDNS';
const servfailReason = `${checkName}Servfail`;
/** The agent re-states its conditions this often; the controller is told the same period. */
const heartbeatSeconds = 2;
/** A stale condition is one not re-stated for two heartbeats (controller/nodeHealth.ts). */
const staleAfterMs = 2 * heartbeatSeconds * 1000;
/** DNSProblem must stay True this long to make the node unhealthy; then remediateAfterSeconds. */
const forSeconds = 10;
const remediateAfterSeconds = 1;
/** Long enough after the reboot that the killed agent's condition goes stale before the ladder would move on. */
const rebootRecoveryWaitSeconds = 10;
const rebootStart = stepEventReason('reboot', 'Start');
const reimageStart = stepEventReason('reimage', 'Start');

let h: RemediationHarness;
let dns: TestDnsServer;
let agentKubeconfig: string;
let agent: AgentProcess | undefined;

const ms = (time: Date | string | undefined): number => new Date(time as unknown as string).getTime();

async function dnsCondition(node: string): Promise<V1NodeCondition | undefined> {
  return (await h.admin.readNode({ name: node })).status?.conditions?.find((c) => c.type === dnsProblem);
}

async function quarantineTaint(node: string) {
  return (await h.admin.readNode({ name: node })).spec?.taints?.find((t) => t.key === keys.quarantineTaint);
}

function eventOf(node: string, reason: string, timeoutMs: number): Promise<CoreV1Event> {
  return h.eventually(`${reason} on ${node}`, async () => (await h.eventsOf(node)).find((e) => e.reason === reason), timeoutMs);
}

/** The agent on `node` with only the dns probe, against the test DNS server. */
async function startAgent(node: string): Promise<AgentProcess> {
  agent = AgentProcess.start(h.dir, `agent-${node}`, {
    nodeName: node,
    kubeconfig: agentKubeconfig,
    server: { address: '127.0.0.1', port: await freeLoopbackPort() },
    publish: { enabled: true, heartbeatSeconds, heartbeatJitter: 0, backoffMaxSeconds: 2 },
    probes: onlyProbes({
      dns: {
        intervalSeconds: 1,
        failureThreshold: 2,
        recoveryThreshold: 2,
        timeoutMs: 300,
        checks: [{ name: checkName, server: dns.address, query: 'kubernetes.default.svc.cluster.local', type: 'A' }],
      },
    }),
  });
  const a = agent;
  await h.eventually('the agent to publish DNSProblem=False', async () => ((await dnsCondition(node))?.reason === 'DNSHealthy' ? true : undefined), 20_000);
  return a;
}

/** A pool of 3 nodes, an agent on the first, the controller quarantining and remediating on DNSProblem. */
async function agentAndController(): Promise<{ node: string; agent: AgentProcess }> {
  const { pool, names } = await h.createPool(3);
  const node = names[0] ?? '';
  const base = h.controllerConfig(pool, {
    detection: { agentConditions: [{ type: dnsProblem, forSeconds }], agentHeartbeatSeconds: heartbeatSeconds, remediateAfterSeconds },
    quarantine: { enabled: true, conditions: [dnsProblem] },
  });
  const ladder = base.ladder as { recoveryWaitSeconds: Record<string, number> };
  h.startReplica('replica-a', { ...base, ladder: { ...ladder, recoveryWaitSeconds: { ...ladder.recoveryWaitSeconds, reboot: rebootRecoveryWaitSeconds } } });
  const a = await startAgent(node);
  await h.leading('replica-a');
  return { node, agent: a };
}

/** DNS turns to SERVFAIL; the agent raises DNSProblem: returned as the agent wrote it. */
async function agentRaisesDnsProblem(node: string): Promise<V1NodeCondition> {
  dns.setMode('servfail');
  const raised = await h.eventually('the agent to publish DNSProblem=True', async () => {
    const c = await dnsCondition(node);
    return c?.status === 'True' ? c : undefined;
  }, 15_000);
  // The agent's own words: its reason naming the failing check and the server it asked.
  expect(raised.reason).toBe(servfailReason);
  expect(raised.message).toContain(dns.address);
  return raised;
}

/** SIGKILL, as a node loss or OOM kill ends the pod: its last condition stays on the Node. */
async function killAgent(node: string, a: AgentProcess): Promise<V1NodeCondition> {
  await a.kill();
  // A status write the agent sent just before dying may still be landing.
  await sleep(500);
  const last = await dnsCondition(node);
  expect(last).toMatchObject({ status: 'True', reason: servfailReason });
  return last as V1NodeCondition;
}

beforeAll(async () => {
  const cluster = testCluster();
  h = await RemediationHarness.start(cluster);
  await cluster.kubectl(['apply', '-f', fileURLToPath(new URL('../../manifests/base/agent-rbac.yaml', import.meta.url))]);
  agentKubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  dns = await TestDnsServer.start({ records: { A: ['10.0.0.1'] } });
});

afterEach(async () => {
  await agent?.kill();
  agent = undefined;
  dns.setMode('answer');
  await h.reset();
});

afterAll(async () => {
  await dns?.stop();
  await h?.close();
});

describe('agent -> controller: a live agent condition drives quarantine and remediation, a dead agent\'s does not', () => {
  it('quarantines and reboots a node whose running agent reports DNSProblem; once the agent is killed its stale condition lifts the quarantine and the ladder ends as recovered, with no reimage', async () => {
    const { node, agent: a } = await agentAndController();
    const raised = await agentRaisesDnsProblem(node);
    const raisedAt = ms(raised.lastTransitionTime);

    const quarantined = await eventOf(node, controllerEventReasons.quarantined, 10_000);
    expect(quarantined.message).toContain(`${dnsProblem} True`);
    expect(await quarantineTaint(node)).toMatchObject({ effect: 'NoSchedule' });

    const started = await eventOf(node, rebootStart, (forSeconds + remediateAfterSeconds) * 1000 + 10_000);
    expect(started.message).toMatch(new RegExp(`^Reboot started because ${dnsProblem}=True persisted \\d+s`));
    expect(ms(started.eventTime) - raisedAt).toBeGreaterThanOrEqual((forSeconds + remediateAfterSeconds) * 1000);
    // The agent kept vouching for it all along: heartbeats newer than the first write, the transition unchanged.
    const beforeKill = await dnsCondition(node);
    expect(ms(beforeKill?.lastHeartbeatTime)).toBeGreaterThan(ms(raised.lastHeartbeatTime));
    expect(ms(beforeKill?.lastTransitionTime)).toBe(raisedAt);

    const last = await killAgent(node, a);
    const lifted = await eventOf(node, controllerEventReasons.quarantineLifted, staleAfterMs + 10_000);
    expect(ms(lifted.eventTime) - ms(last.lastHeartbeatTime)).toBeGreaterThanOrEqual(staleAfterMs);
    expect(await quarantineTaint(node)).toBeUndefined();
    // Lifted on staleness alone: the Node still says DNSProblem=True, exactly as the agent left it.
    expect(await dnsCondition(node)).toMatchObject({ status: 'True', reason: servfailReason, lastHeartbeatTime: last.lastHeartbeatTime });

    await eventOf(node, controllerEventReasons.recovered, rebootRecoveryWaitSeconds * 1000 + 10_000);
    const reasons = await h.reasonsOf(node);
    expect(reasons).not.toContain(reimageStart);
    expect(reasons.filter((r) => r === rebootStart)).toHaveLength(1);
    expect(h.armCallsFor('0', 'restart')).toHaveLength(1);
    expect(h.arm.actionCalls().filter((c) => c.action !== 'restart')).toEqual([]);
    // The agent's transition event: the condition came from the agent, not from this test.
    const agentEvents = await h.admin.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node},reason=${servfailReason}` });
    expect(agentEvents.items.map((e) => e.source?.component)).toContain(components.agent);
  });

  it('a DNSProblem left True by an agent killed before it lasted forSeconds starts no ladder, and its quarantine is lifted', async () => {
    const { node, agent: a } = await agentAndController();
    const raised = await agentRaisesDnsProblem(node);
    const raisedAt = ms(raised.lastTransitionTime);
    await eventOf(node, controllerEventReasons.quarantined, 10_000);
    const last = await killAgent(node, a);
    // Meaningful only if staleness comes well before the condition has lasted its duration.
    expect(ms(last.lastHeartbeatTime) + staleAfterMs + 2000).toBeLessThan(raisedAt + forSeconds * 1000);

    // Past the moment a live DNSProblem would have started the reboot, with room for a few passes.
    await sleep(Math.max(0, raisedAt + (forSeconds + remediateAfterSeconds) * 1000 + 4000 - Date.now()));
    expect(await h.reasonsOf(node)).toEqual([controllerEventReasons.quarantined, controllerEventReasons.quarantineLifted]);
    expect(await quarantineTaint(node)).toBeUndefined();
    expect(h.arm.actionCalls()).toEqual([]);
    expect(await dnsCondition(node)).toMatchObject({ status: 'True', reason: servfailReason, lastHeartbeatTime: last.lastHeartbeatTime });
  });
});
