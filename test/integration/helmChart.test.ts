import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1ConfigMap, V1Container, V1DaemonSet, V1Deployment, V1NodeCondition, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadAgentConfig } from '../../agent/config/agentConfig.js';
import type { AgentConfig } from '../../agent/config/schema.js';
import { type ControllerConfig, loadControllerConfig } from '../../controller/config/controllerConfig.js';
import { resolveBinaries } from '../cluster/binaries.js';
import type { ClusterAccess } from '../cluster/clusterAccess.js';
import { type ControlPlane, startControlPlane } from '../cluster/controlPlane.js';
import { testCluster } from '../cluster/testCluster.js';
import { COLD_BUILD_TIMEOUT_MS, monitoringTool, runTool, type ToolResult } from '../support/monitoringTools.js';

const chart = fileURLToPath(new URL('../../charts/nodepulse', import.meta.url));
const manifests = fileURLToPath(new URL('../../manifests', import.meta.url));

/** Each kustomize overlay and the chart values that install the same thing. */
const installs = {
  generic: {},
  aks: { profile: 'aks' },
  'agent-reboot': { agentReboot: { enabled: true } },
} as const;
type InstallName = keyof typeof installs;

/** The labels Helm's conventions add to every object's metadata; nothing else may differ. */
const helmLabels = ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance', 'app.kubernetes.io/version'];
/** A generated ConfigMap's name: its base name and a content hash of 10 characters. */
const generatedName = /(nodepulse-(?:agent|controller)-config)-[a-z0-9]{10}\b/g;

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

const work = mkdtempSync(join(tmpdir(), 'nodepulse-helm-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let helmBinary: string;
beforeAll(async () => {
  helmBinary = await monitoringTool('helm');
}, COLD_BUILD_TIMEOUT_MS);

/** helm with its own config, cache and data folders (never the user's) and, for cluster calls, a kubeconfig. */
function helm(args: readonly string[], kubeconfig?: string): Promise<ToolResult> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: work,
    HELM_CACHE_HOME: join(work, 'cache'),
    HELM_CONFIG_HOME: join(work, 'config'),
    HELM_DATA_HOME: join(work, 'data'),
  };
  return runTool(helmBinary, [...(kubeconfig ? ['--kubeconfig', kubeconfig] : []), ...args], { env, timeoutMs: 300_000 });
}

let valuesFiles = 0;
function valuesFile(values: object): string {
  const file = join(work, `values-${valuesFiles++}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

async function helmTemplate(values: object): Promise<string> {
  const result = await helm(['template', 'nodepulse', chart, '-f', valuesFile(values)]);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

/**
 * The objects a manifest stream turns into as kubectl (and Helm's client, the same cli-runtime
 * decoder) send them: parsed by kubectl itself, so both install paths are read alike.
 */
async function asSent(cluster: ClusterAccess, text: string): Promise<K8sObject[]> {
  const out = await cluster.kubectl(['create', '--dry-run=client', '-o', 'json', '-f', '-'], { input: text });
  // One indented JSON document per object: each starts with a brace in the first column.
  return out
    .trim()
    .split(/\n(?=\{)/)
    .map((doc) => JSON.parse(doc) as K8sObject);
}

const keyOf = (o: K8sObject) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Comparable form: Helm's labels gone, generated names without their hash, config files as the YAML they hold. */
function comparable(objects: K8sObject[]): Map<string, unknown> {
  return new Map(
    objects.map((object) => {
      const copy = JSON.parse(JSON.stringify(object).replace(generatedName, '$1-<hash>')) as K8sObject;
      for (const label of helmLabels) delete copy.metadata.labels?.[label];
      if (copy.kind === 'ConfigMap') {
        const data = (copy as V1ConfigMap).data ?? {};
        copy.data = Object.fromEntries(Object.entries(data).map(([file, text]) => [file, parse(text) as unknown]));
      }
      return [keyOf(copy), copy];
    }),
  );
}

async function kustomizeBuild(overlay: string): Promise<string> {
  return testCluster().kubectl(['kustomize', join(manifests, 'overlays', overlay)]);
}

function one<T>(objects: K8sObject[], kind: string, name: string): T {
  const found = objects.filter((o) => o.kind === kind && (name.endsWith('-') ? o.metadata.name.startsWith(name) : o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}*, found ${found.length}`);
  return found[0] as T;
}

function container(workload: V1DaemonSet | V1Deployment): V1Container {
  const first = workload.spec?.template.spec?.containers[0];
  if (!first) throw new Error(`${workload.metadata?.name} has no container`);
  return first;
}

/** Loads a rendered config the way the program loads it in its pod: the mounted file plus its environment. */
function loaded(objects: K8sObject[]): { agent: AgentConfig; controller: ControllerConfig } {
  const file = (map: V1ConfigMap, key: string) => {
    const path = join(work, `${map.metadata?.name}-${key}`);
    writeFileSync(path, map.data?.[key] ?? '');
    return path;
  };
  const agentMap = one<V1ConfigMap>(objects, 'ConfigMap', 'nodepulse-agent-config-');
  const controllerMap = one<V1ConfigMap>(objects, 'ConfigMap', 'nodepulse-controller-config-');
  const controller = one<V1Deployment>(objects, 'Deployment', 'nodepulse-controller');
  const workloadIdentity = controller.spec?.template.metadata?.labels?.['azure.workload.identity/use'] === 'true';
  return {
    agent: loadAgentConfig(file(agentMap, 'agent.yaml'), { NODE_NAME: 'node-0', POD_NAME: 'pod-0', POD_NAMESPACE: 'nodepulse' }),
    controller: loadControllerConfig(file(controllerMap, 'controller.yaml'), {
      POD_NAME: 'controller-0',
      // What the AKS workload identity webhook adds to a pod labelled for it.
      ...(workloadIdentity ? { AZURE_CLIENT_ID: 'client', AZURE_TENANT_ID: 'tenant', AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' } : {}),
    }),
  };
}

describe('the Helm chart renders what the kustomize overlays install', () => {
  it.each(Object.keys(installs) as InstallName[])('helm template with the %s values equals kustomize build of that overlay, but for the labels Helm adds', async (name) => {
    const cluster = testCluster();
    const fromHelm = comparable(await asSent(cluster, await helmTemplate(installs[name])));
    const fromKustomize = comparable(await asSent(cluster, await kustomizeBuild(name)));
    expect([...fromHelm.keys()].sort()).toEqual([...fromKustomize.keys()].sort());
    for (const [key, object] of fromKustomize) expect(fromHelm.get(key), key).toEqual(object);
  });

  it.each(Object.keys(installs) as InstallName[])('passes helm lint --strict with the %s values', async (name) => {
    const result = await helm(['lint', '--strict', chart, '-f', valuesFile(installs[name])]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it.each(Object.keys(installs) as InstallName[])('gives the agent and the controller, with the %s values, configs their own loaders accept', async (name) => {
    const objects = await asSent(testCluster(), await helmTemplate(installs[name]));
    const configs = loaded(objects);
    expect(configs.agent.profile).toBe(name === 'aks' ? 'azure' : 'generic');
    expect(configs.agent.reboot.enabled).toBe(name === 'agent-reboot');
    expect(configs.controller.provider.type).toBe({ generic: 'dry-run', aks: 'azure', 'agent-reboot': 'agent' }[name]);
  });
});

describe("the chart's values", () => {
  it("layer agent.config over the profile's settings, a false switching off what the profile switched on", async () => {
    const objects = await asSent(
      testCluster(),
      await helmTemplate({
        profile: 'aks',
        agent: { config: { probes: { konnectivity: { enabled: false }, dns: { apiServerFQDN: 'np-1234.hcp.eastus.azmk8s.io', timeoutMs: 1500 } } } },
        controller: { config: { safety: { maxInFlight: 2 }, provider: { azure: { credential: 'managed-identity' } } } },
      }),
    );
    const { agent, controller } = loaded(objects);
    expect(agent.probes.konnectivity.enabled).toBe(false);
    expect(agent.probes.dns).toMatchObject({ apiServerFQDN: 'np-1234.hcp.eastus.azmk8s.io', timeoutMs: 1500, clusterDNS: '10.0.0.10', privateCluster: false });
    expect(agent.procRoot).toBe('/host/proc');
    expect(controller.safety.maxInFlight).toBe(2);
    expect(controller.provider).toMatchObject({ type: 'azure', azure: { credential: 'managed-identity' } });
    // Without workload identity the controller's pod is not labelled for its webhook.
    const deployment = one<V1Deployment>(objects, 'Deployment', 'nodepulse-controller');
    expect(deployment.spec?.template.metadata?.labels?.['azure.workload.identity/use']).toBeUndefined();
  });

  it('name the generated ConfigMaps by their content: a config change rolls the pods, an unrelated value does not', async () => {
    const names = async (values: object) => {
      const objects = await asSent(testCluster(), await helmTemplate(values));
      const configMapOf = (workload: V1DaemonSet | V1Deployment) => workload.spec?.template.spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name;
      return {
        agent: configMapOf(one<V1DaemonSet>(objects, 'DaemonSet', 'nodepulse-agent')),
        controller: configMapOf(one<V1Deployment>(objects, 'Deployment', 'nodepulse-controller')),
      };
    };
    const base = await names({});
    expect(base.agent).toMatch(/^nodepulse-agent-config-[0-9a-f]{10}$/);
    expect(await names({ image: { tag: '0.1.1' } })).toEqual(base);
    const changed = await names({ agent: { config: { publish: { heartbeatSeconds: 120 } } } });
    expect(changed.agent).not.toBe(base.agent);
    expect(changed.controller).toBe(base.controller);
  });

  it("follow the programs' settings: ports, the Lease, the konnectivity Deployment and the namespace in every object and policy", async () => {
    const objects = await asSent(
      testCluster(),
      await helmTemplate({
        namespace: { name: 'node-health' },
        agent: { config: { server: { port: 9258 }, probes: { konnectivity: { namespace: 'tunnel', deployment: 'tunnel-agent' } } } },
        controller: { config: { metrics: { port: 9259 }, leaderElection: { leaseName: 'np-leader' } } },
      }),
    );
    const agent = one<V1DaemonSet>(objects, 'DaemonSet', 'nodepulse-agent');
    const controller = one<V1Deployment>(objects, 'Deployment', 'nodepulse-controller');
    expect(container(agent).ports?.find((p) => p.name === 'health')?.containerPort).toBe(9258);
    expect(container(controller).ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(9259);
    const leaderRole = one<{ metadata: { namespace: string }; rules: Array<{ resourceNames?: string[] }> }>(objects, 'Role', 'nodepulse-controller-leader');
    expect(leaderRole.metadata.namespace).toBe('node-health');
    expect(leaderRole.rules.flatMap((r) => r.resourceNames ?? [])).toEqual(['np-leader']);
    const tunnelRole = one<{ metadata: { namespace: string }; rules: Array<{ resourceNames?: string[] }> }>(objects, 'Role', 'nodepulse-agent-konnectivity');
    expect(tunnelRole.metadata.namespace).toBe('tunnel');
    expect(tunnelRole.rules.flatMap((r) => r.resourceNames ?? [])).toEqual(['tunnel-agent']);
    expect(loaded(objects).controller.leaderElection.namespace).toBe('node-health');
    // Everything namespaced is in node-health but the Roles that must live where their objects are.
    const elsewhere = objects.filter((o) => o.metadata.namespace && o.metadata.namespace !== 'node-health').map(keyOf).sort();
    expect(elsewhere).toEqual(['Role default/nodepulse-agent-events', 'Role default/nodepulse-controller-events', 'Role tunnel/nodepulse-agent-konnectivity', 'RoleBinding default/nodepulse-agent-events', 'RoleBinding default/nodepulse-controller-events', 'RoleBinding tunnel/nodepulse-agent-konnectivity']);
    const policies = JSON.stringify(objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy'));
    expect(policies).toContain('system:serviceaccount:node-health:nodepulse-agent');
    expect(policies).toContain('system:serviceaccount:node-health:nodepulse-controller');
    expect(policies).not.toContain('system:serviceaccount:nodepulse:');
  });

  it.each([
    [{ profile: 'akss' }, /profile.*(akss|must be one of|value must be)/s],
    [{ agent: { config: { probes: { dns: { timeotMs: 500 } } } } }, /agent\/config\/probes\/dns.*timeotMs/s],
    [{ agent: { config: { probes: { cpu: { someAvg10Percent: 150 } } } } }, /agent\/config\/probes\/cpu\/someAvg10Percent/],
    [{ controller: { config: { provider: { type: 'azur' } } } }, /controller\/config\/provider\/type/],
    [{ image: { pullPolicy: 'Sometimes' } }, /image\/pullPolicy/],
    [{ agent: { tolerations: [{ operator: 'Exist' }] } }, /agent\/tolerations\/0\/operator/],
  ])('refuses %j before rendering anything, naming the field', async (values, field) => {
    const result = await helm(['template', 'nodepulse', chart, '-f', valuesFile(values)]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(field);
  });

  it('renders PodMonitor and ServiceMonitor objects only when asked, selecting the pods and ports that exist and labelling the node', async () => {
    const plain = await asSent(testCluster(), await helmTemplate({}));
    expect(plain.filter((o) => /Monitor$/.test(o.kind) || o.kind === 'Service')).toEqual([]);
    const text = await helmTemplate({ monitoring: { podMonitor: { enabled: true, labels: { release: 'kps' } }, serviceMonitor: { enabled: true } } });
    const objects = (text.split(/^---$/m).map((doc) => parse(doc) as K8sObject | null).filter(Boolean) as K8sObject[]);
    const workloads = { 'nodepulse-agent': one<V1DaemonSet>(objects, 'DaemonSet', 'nodepulse-agent'), 'nodepulse-controller': one<V1Deployment>(objects, 'Deployment', 'nodepulse-controller') };
    for (const [name, workload] of Object.entries(workloads)) {
      const podLabels = workload.spec?.template.metadata?.labels ?? {};
      const portNames = (container(workload).ports ?? []).map((p) => p.name);
      const podMonitor = one<{ metadata: { labels: Record<string, string> }; spec: { jobLabel: string; selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string; relabelings?: unknown[] }> } }>(objects, 'PodMonitor', name);
      expect(podMonitor.metadata.labels.release).toBe('kps');
      expect(podLabels).toMatchObject(podMonitor.spec.selector.matchLabels);
      expect(podLabels[podMonitor.spec.jobLabel]).toBe(name);
      expect(portNames).toContain(podMonitor.spec.podMetricsEndpoints[0]?.port);
      const service = one<{ spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string }> }; metadata: { labels: Record<string, string> } }>(objects, 'Service', `${name}-metrics`);
      expect(podLabels).toMatchObject(service.spec.selector);
      expect(service.spec.ports.map((p) => p.targetPort)).toEqual([podMonitor.spec.podMetricsEndpoints[0]?.port]);
      expect(service.spec.ports[0]?.port).toBe(container(workload).ports?.[0]?.containerPort);
      const serviceMonitor = one<{ spec: { jobLabel: string; selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; relabelings?: unknown[] }> } }>(objects, 'ServiceMonitor', name);
      expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
      expect(service.metadata.labels[serviceMonitor.spec.jobLabel]).toBe(name);
      const nodeLabel = [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }];
      if (name === 'nodepulse-agent') {
        expect(podMonitor.spec.podMetricsEndpoints[0]?.relabelings).toEqual(nodeLabel);
        expect(serviceMonitor.spec.endpoints[0]?.relabelings).toEqual(nodeLabel);
      }
    }
  });
});

describe('helm install, upgrade and uninstall on a real control plane with three simulated nodes', () => {
  let plane: ControlPlane;
  const rollout = (kind: 'daemonset' | 'deployment', name: string) =>
    plane.kubectl(['rollout', 'status', `${kind}/${name}`, '-n', 'nodepulse', '--timeout=150s'], { timeoutMs: 170_000 });
  const pods = async (name: string) =>
    (JSON.parse(await plane.kubectl(['get', 'pods', '-n', 'nodepulse', '-l', `app.kubernetes.io/name=${name}`, '-o', 'json'])) as { items: V1Pod[] }).items.filter((p) => !p.metadata?.deletionTimestamp);
  const installed = (args: readonly string[]) => helm(args, plane.kubeconfig);

  beforeAll(async () => {
    plane = await startControlPlane({ profile: 'full', nodes: 3 });
  });
  afterAll(async () => {
    await plane?.stop();
  });

  it('refuses a misspelt agent setting at helm install, naming it, and creates nothing', async () => {
    const result = await installed(['install', 'nodepulse', chart, '--set', 'agent.config.probes.dns.timeotMs=500']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/agent\/config\/probes\/dns.*timeotMs/s);
    expect(await plane.kubectl(['get', 'namespaces', '-o', 'name'])).not.toContain('namespace/nodepulse');
  });

  it('installs: the agent rolls out to every node and both controller replicas become ready', async () => {
    const result = await installed(['install', 'nodepulse', chart]);
    expect(result.code, result.stderr).toBe(0);
    await rollout('daemonset', 'nodepulse-agent');
    await rollout('deployment', 'nodepulse-controller');
    expect((await pods('nodepulse-agent')).map((p) => p.spec?.nodeName).sort()).toEqual([...plane.nodeNames].sort());
    expect(await pods('nodepulse-controller')).toHaveLength(2);
  });

  it('upgrades with a changed config and image: both roll out again onto the new ConfigMaps and image', async () => {
    const before = (await pods('nodepulse-agent'))[0]?.spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name;
    const result = await installed(['upgrade', 'nodepulse', chart, '--set', 'agent.config.publish.heartbeatSeconds=120', '--set', 'image.tag=0.1.1']);
    expect(result.code, result.stderr).toBe(0);
    await rollout('daemonset', 'nodepulse-agent');
    await rollout('deployment', 'nodepulse-controller');
    const agents = await pods('nodepulse-agent');
    expect(agents).toHaveLength(plane.nodeNames.length);
    for (const pod of agents) {
      expect(pod.spec?.containers[0]?.image).toBe('nodepulse:0.1.1');
      expect(pod.spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name).not.toBe(before);
    }
    expect((await pods('nodepulse-controller')).map((p) => p.spec?.containers[0]?.image)).toEqual(['nodepulse:0.1.1', 'nodepulse:0.1.1']);
    // Helm removed the ConfigMap the old pods used: one per program is left.
    expect((await plane.kubectl(['get', 'configmaps', '-n', 'nodepulse', '-o', 'name'])).match(/nodepulse-(agent|controller)-config-/g)).toHaveLength(2);
  });

  it("uninstalls everything it installed and leaves the nodes' conditions, which the documented clean-up then removes", async () => {
    const [node] = plane.nodeNames as [string];
    // What an agent and the controller would have written on the node.
    const now = new Date().toISOString();
    const condition: V1NodeCondition = { type: 'KubeletProblem', status: 'True', reason: 'KubeletUnhealthy', message: 'written by the agent', lastHeartbeatTime: now as unknown as Date, lastTransitionTime: now as unknown as Date };
    await plane.kubectl(['patch', 'node', node, '--subresource=status', '--type=strategic', '-p', JSON.stringify({ status: { conditions: [condition] } })]);
    await plane.kubectl(['label', 'node', node, 'nodepulse.io/needs-human=true']);

    const result = await installed(['uninstall', 'nodepulse', '--wait', '--timeout', '150s']);
    expect(result.code, result.stderr).toBe(0);
    const left = await plane.kubectl(['get', 'clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings', '-o', 'name']);
    expect(left).not.toMatch(/nodepulse/);
    expect(await plane.kubectl(['get', 'roles,rolebindings', '-A', '-o', 'name'])).not.toMatch(/nodepulse/);
    const namespaceGone = async () => !(await plane.kubectl(['get', 'namespaces', '-o', 'name'])).includes('namespace/nodepulse');
    for (let i = 0; i < 120 && !(await namespaceGone()); i++) await new Promise((r) => setTimeout(r, 1000));
    expect(await namespaceGone()).toBe(true);
    const conditionTypes = async () => (JSON.parse(await plane.kubectl(['get', 'node', node, '-o', 'json'])) as { status: { conditions: V1NodeCondition[] } }).status.conditions.map((c) => c.type);
    expect(await conditionTypes()).toContain('KubeletProblem');

    // manifests/README.md, Uninstall: the loop that removes what nodepulse wrote on the Nodes.
    const readme = readFileSync(join(manifests, 'README.md'), 'utf8');
    const cleanup = /remove it with:\s*```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(cleanup, 'the clean-up block in manifests/README.md').toBeDefined();
    const { kubectl } = await resolveBinaries(['kubectl']);
    const ran = await runTool('bash', ['-c', cleanup ?? ''], { env: { PATH: `${dirname(kubectl)}:${process.env.PATH ?? ''}`, KUBECONFIG: plane.kubeconfig, HOME: work } });
    expect(ran.code, ran.stderr).toBe(0);
    expect(await conditionTypes()).not.toContain('KubeletProblem');
    expect(await plane.kubectl(['get', 'node', node, '-o', 'jsonpath={.metadata.labels}'])).not.toContain('nodepulse.io/needs-human');
  });
});
