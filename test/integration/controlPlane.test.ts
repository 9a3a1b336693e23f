import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../cluster/controlPlane.js';
import { testCluster } from '../cluster/testCluster.js';

const manifest = (name: string) => fileURLToPath(new URL(`../../manifests/base/${name}`, import.meta.url));
const uniqueName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
const strategicMerge = () => setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

function clientFor(kubeconfigPath: string): CoreV1Api {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfigPath);
  return config.makeApiClient(CoreV1Api);
}

describe('the agent ServiceAccount on a real kube-apiserver', () => {
  const cluster = testCluster();
  const admin = clientFor(cluster.kubeconfig);
  const nodeName = uniqueName('np-controlplane');
  let agent: CoreV1Api;

  beforeAll(async () => {
    await admin.createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/os': 'linux' } } } });
    await cluster.kubectl(['apply', '-f', manifest('namespace.yaml'), '-f', manifest('agent-rbac.yaml')]);
    agent = clientFor(await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent'));
  });

  afterAll(async () => {
    await admin.deleteNode({ name: nodeName });
  });

  it('publishes a node condition that kubectl describe node shows, keeping the kubelet Ready condition', async () => {
    const now = new Date();
    // Stands in for the kubelet, which owns Ready.
    await admin.patchNodeStatus(
      {
        name: nodeName,
        body: {
          status: {
            conditions: [
              { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now },
            ],
          },
        },
      },
      strategicMerge(),
    );

    await agent.patchNodeStatus(
      {
        name: nodeName,
        body: {
          status: {
            conditions: [
              {
                type: 'DNSResolutionFailing',
                status: 'True',
                reason: 'UpstreamResolverTimeout',
                message: 'resolver 127.0.0.1:5353 did not answer 3 queries in a row',
                lastHeartbeatTime: now,
                lastTransitionTime: now,
              },
            ],
          },
        },
      },
      strategicMerge(),
    );

    const described = await cluster.kubectl(['describe', 'node', nodeName]);
    expect(described).toMatch(/DNSResolutionFailing\s+True\s+.*UpstreamResolverTimeout\s+resolver 127\.0\.0\.1:5353 did not answer 3 queries in a row/);
    expect(described).toMatch(/Ready\s+True\s+.*KubeletReady\s+kubelet is posting ready status/);
  });

  it('refuses to let the agent delete a node', async () => {
    const refusal = await agent.deleteNode({ name: nodeName }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(ApiException);
    expect((refusal as ApiException<unknown>).code).toBe(403);
    await expect(admin.readNode({ name: nodeName })).resolves.toMatchObject({ metadata: { name: nodeName } });
  });
});

describe('a full control plane with three simulated nodes', () => {
  let plane: ControlPlane;

  beforeAll(async () => {
    plane = await startControlPlane({ profile: 'full', nodes: 3 });
  });

  afterAll(async () => {
    await plane?.stop();
  });

  it('rolls a DaemonSet out to every node', async () => {
    const namespace = 'rollout-check';
    const daemonSet = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'probe', namespace },
      spec: {
        selector: { matchLabels: { app: 'probe' } },
        template: {
          metadata: { labels: { app: 'probe' } },
          // kwok never pulls images: the name only has to be valid.
          spec: { containers: [{ name: 'probe', image: 'nodepulse.invalid/probe:test' }] },
        },
      },
    };
    await plane.kubectl(['create', 'namespace', namespace]);
    await plane.kubectl(['apply', '-f', '-'], { input: JSON.stringify(daemonSet) });

    await plane.kubectl(['rollout', 'status', `daemonset/probe`, '-n', namespace, '--timeout=120s']);

    const ready = await plane.kubectl(['get', 'daemonset/probe', '-n', namespace, '-o', 'jsonpath={.status.numberReady}']);
    expect(Number(ready)).toBe(plane.nodeNames.length);
  });
});
