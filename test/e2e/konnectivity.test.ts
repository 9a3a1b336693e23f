import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1NodeCondition } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually } from '../support/agentProcess.js';
import { onlyProbes } from '../support/onlyProbes.js';
import { TestNetwork } from '../support/testNetwork.js';

const cluster = testCluster();
const admin = cluster.adminKubeConfig();
const core = admin.makeApiClient(CoreV1Api);
const apps = admin.makeApiClient(AppsV1Api);
const repo = join(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'nodepulse-e2e-konn-'));
const node = 'e2e-konnectivity';
const pod = 'nodepulse-agent-e2e';
const port = 20300;
const network = new TestNetwork();
let agent: AgentProcess;
let decoy: ChildProcess | undefined;

/** Points the agent's Pod object at an address, as the kubelet reports the pod IP. */
async function setPodIP(ip: string): Promise<void> {
  await core.patchNamespacedPodStatus(
    { namespace: 'nodepulse', name: pod, body: { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: network.hostAddress } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

async function konnectivityCondition(): Promise<V1NodeCondition | undefined> {
  return (await core.readNode({ name: node })).status?.conditions?.find((c) => c.type === 'KonnectivityProblem');
}

function until(status: 'True' | 'False', reason?: string) {
  return eventually(
    `KonnectivityProblem ${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      const c = await konnectivityCondition();
      return c?.status === status && (!reason || c.reason === reason) ? c : undefined;
    },
    30_000,
    agent,
  );
}

beforeAll(async () => {
  network.create();
  await cluster.kubectl(['apply', '-f', join(repo, 'manifests/base/namespace.yaml'), '-f', join(repo, 'manifests/base/agent-rbac.yaml')]);
  await core.createNode({ body: { metadata: { name: node } } });
  await core.createNamespacedPod({
    namespace: 'nodepulse',
    body: {
      metadata: { name: pod, labels: { app: 'nodepulse-agent' } },
      spec: { nodeName: node, hostNetwork: true, containers: [{ name: 'agent', image: 'nodepulse/agent:test', ports: [{ containerPort: port }] }] },
    },
  });
  await setPodIP(network.hostAddress);
  const kubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  agent = AgentProcess.start(work, 'agent', {
    nodeName: node,
    kubeconfig,
    // As the DaemonSet runs it: the full endpoint on loopback, the pod IP listener for the API server.
    server: { address: '127.0.0.1', podAddress: network.hostAddress, port },
    publish: { enabled: true, backoffMaxSeconds: 2 },
    probes: onlyProbes({
      konnectivity: { intervalSeconds: 1, failureThreshold: 2, recoveryThreshold: 2, timeoutMs: 900, deploymentCacheSeconds: 1, podName: pod, podNamespace: 'nodepulse' },
    }),
  });
});

afterAll(async () => {
  await agent?.stop();
  decoy?.kill('SIGKILL');
  network.destroy();
});

describe('konnectivity path probe against the real API server pod proxy', () => {
  it('passes when the API server reaches this agent, in direct mode when there is no konnectivity-agent', async () => {
    const c = await until('False', 'KonnectivityPathHealthy');
    expect(c.message).toMatch(/answered in \d+ms/);
    expect(c.message).toContain('direct mode');
  });

  it('reports the konnectivity-agent Deployment readiness and the first fix', async () => {
    await apps.createNamespacedDeployment({
      namespace: 'kube-system',
      body: {
        metadata: { name: 'konnectivity-agent' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'konnectivity-agent' } },
          template: { metadata: { labels: { app: 'konnectivity-agent' } }, spec: { containers: [{ name: 'agent', image: 'konnectivity-agent:test' }] } },
        },
      },
    });
    await eventually('the probe to see the Deployment', async () => ((await konnectivityCondition())?.message?.includes('konnectivity-agent 0/2 ready') ? true : undefined), 20_000, agent);
  });

  it('raises NodeUnreachableFromAPIServer when the API server cannot reach the agent, and clears when it can again', async () => {
    // Nothing listens on the far side of the link: the API server's dial is refused.
    await setPodIP(network.peerAddress);
    const c = await until('True', 'NodeUnreachableFromAPIServer');
    expect(c.message).toContain(`${pod}:${port}`);
    expect(c.message).toContain('kubectl rollout restart deploy konnectivity-agent -n kube-system');
    const events = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node},reason=NodeUnreachableFromAPIServer`, '-o', 'name']);
    expect(events.trim()).not.toBe('');
    await setPodIP(network.hostAddress);
    await until('False', 'KonnectivityPathHealthy');
  });

  it('raises KonnectivityWrongEndpoint when the path reaches something that does not know the nonce', async () => {
    decoy = network.spawnInside(process.execPath, [
      '-e',
      `require('node:http').createServer((q, s) => s.end('not the agent')).listen(${port}, '${network.peerAddress}', () => console.log('listening'))`,
    ]);
    const started = decoy;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()).includes('listening') && resolve());
      started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.on('exit', (code) => reject(new Error(`the decoy server exited (${code}): ${output}`)));
    });
    await setPodIP(network.peerAddress);
    await until('True', 'KonnectivityWrongEndpoint');
    await setPodIP(network.hostAddress);
    await until('False', 'KonnectivityPathHealthy');
  });
});
