import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../cluster/controlPlane.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import { TestDnsServer } from '../support/dnsServer.js';
import { onlyProbes } from '../support/onlyProbes.js';

const repo = join(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'nodepulse-e2e-restart-'));
const node = 'e2e-apiserver-restart';
let plane: ControlPlane;
let dns: TestDnsServer;
let agent: AgentProcess;
let port: number;

async function dnsCondition(core: CoreV1Api) {
  return (await core.readNode({ name: node })).status?.conditions?.find((c) => c.type === 'DNSProblem');
}

async function localConditions(): Promise<Array<{ type: string; status: string }>> {
  const res = await fetch(`http://127.0.0.1:${port}/conditions`);
  return ((await res.json()) as { conditions: Array<{ type: string; status: string }> }).conditions;
}

beforeAll(async () => {
  // Its own control plane: this test stops the API server, which the shared one must never see.
  plane = await startControlPlane({ profile: 'apiserver' });
  await plane.kubectl(['apply', '-f', join(repo, 'manifests/base/namespace.yaml'), '-f', join(repo, 'manifests/base/agent-rbac.yaml')]);
  const core = plane.adminKubeConfig().makeApiClient(CoreV1Api);
  await core.createNode({ body: { metadata: { name: node } } });
  await core.patchNodeStatus(
    { name: node, body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  dns = await TestDnsServer.start({ records: { A: ['10.0.0.1'] } });
  port = await freeLoopbackPort();
  const kubeconfig = await plane.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  agent = AgentProcess.start(work, 'agent', {
    nodeName: node,
    kubeconfig,
    server: { address: '127.0.0.1', port },
    publish: { enabled: true, backoffMaxSeconds: 2 },
    probes: onlyProbes({
      dns: { intervalSeconds: 1, failureThreshold: 2, recoveryThreshold: 2, timeoutMs: 300, checks: [{ name: 'ClusterDNS', server: dns.address, query: 'kubernetes.default.svc.cluster.local' }] },
    }),
  });
});

afterAll(async () => {
  await agent?.stop();
  await dns?.stop();
  await plane?.stop();
});

describe('API server restart under a running agent', () => {
  it('keeps probing and serving while the API server is down, and publishes the latest state as soon as it is back', async () => {
    const core = plane.adminKubeConfig().makeApiClient(CoreV1Api);
    await eventually('the agent to publish', async () => ((await dnsCondition(core))?.reason === 'DNSHealthy' ? true : undefined), 20_000, agent);

    // While the API server is down, the DNS server fails: the problem is found locally...
    const restart = plane.restartApiserver(8000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    dns.setMode('servfail');
    await eventually('DNSProblem True on the local endpoint during the outage', async () => {
      const c = (await localConditions()).find((x) => x.type === 'DNSProblem');
      return c?.status === 'True' ? true : undefined;
    }, 6000, agent);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    await restart;
    const backAt = Date.now();

    // ...and reaches the API server once it is back, within the backoff cap (2 s) plus a sample.
    const c = await eventually('DNSProblem True on the API server', async () => {
      const x = await dnsCondition(core);
      return x?.status === 'True' ? x : undefined;
    }, 15_000, agent);
    expect(c.reason).toBe('ClusterDNSServfail');
    expect(Date.now() - backAt).toBeLessThan(6000);
    expect(agent.logLines.some((l) => l.includes('backing off'))).toBe(true);

    // The transition event written during the outage is delivered too.
    await eventually('the ClusterDNSServfail event', async () => {
      const text = await plane.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node},reason=ClusterDNSServfail`, '-o', 'name']);
      return text.trim() ? true : undefined;
    }, 10_000, agent);
    expect(agent.running).toBe(true);
  });
});
