import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Container,
  type V1DaemonSet,
  type V1Deployment,
  type V1ValidatingAdmissionPolicy,
  type V1NodeCondition,
  type V1Pod,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadAgentConfig } from '../../agent/config/agentConfig.js';
import type { AgentConfig } from '../../agent/config/schema.js';
import { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import { KubeApiError, KubeClient } from '../../common/kube/kubeClient.js';
import { kubeconfigCredentials } from '../../common/kube/kubeconfigFile.js';
import { components } from '../../common/contract.js';
import { nodeEvent } from '../../common/kube/nodeEvent.js';
import { type ControllerConfig, loadControllerConfig } from '../../controller/config/controllerConfig.js';
import { type ControlPlane, startControlPlane } from '../cluster/controlPlane.js';
import { testCluster } from '../cluster/testCluster.js';
import { podBoundKubeconfig } from '../support/podBoundKubeconfig.js';
import { TestNetwork } from '../support/testNetwork.js';

const manifests = fileURLToPath(new URL('../../manifests/', import.meta.url));
const overlayDir = (name: string) => join(manifests, 'overlays', name);

/** What each overlay promises: the agent's profile, the controller's provider, host reboots. */
const overlays = {
  aks: { profile: 'azure', provider: 'azure', reboots: false },
  generic: { profile: 'generic', provider: 'dry-run', reboots: false },
  'agent-reboot': { profile: 'generic', provider: 'agent', reboots: true },
} as const;
type OverlayName = keyof typeof overlays;

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
}

interface Rendered {
  objects: Manifest[];
  agent: V1DaemonSet;
  controller: V1Deployment;
  agentConfig: AgentConfig;
  controllerConfig: ControllerConfig;
  agentConfigMapName: string;
  controllerConfigMapName: string;
}

/** The one object of `kind` whose name is `name`, or starts with it when it ends in '-' (a generated name). */
function one<T>(objects: Manifest[], kind: string, name: string): T {
  const matches = (actual: string) => (name.endsWith('-') ? actual.startsWith(name) : actual === name);
  const found = objects.filter((o) => o.kind === kind && matches(o.metadata.name));
  if (found.length !== 1) throw new Error(`expected one ${kind} named ${name}*, found ${found.length}`);
  return found[0] as T;
}

function container(workload: V1DaemonSet | V1Deployment): V1Container {
  const first = workload.spec?.template.spec?.containers[0];
  if (!first) throw new Error(`${workload.metadata?.name} has no container`);
  return first;
}

const configDir = mkdtempSync(join(tmpdir(), 'nodepulse-manifest-configs-'));
afterAll(() => rmSync(configDir, { recursive: true, force: true }));

/** Writes a generated ConfigMap's one file to disk, as the pod's volume would. */
function mountedFile(map: V1ConfigMap, file: string): string {
  const text = map.data?.[file];
  if (text === undefined) throw new Error(`ConfigMap ${map.metadata?.name} has no ${file}`);
  const path = join(configDir, `${map.metadata?.name}-${file}`);
  writeFileSync(path, text);
  return path;
}

/** The environment a container starts with: its literal and downward-API variables (with sample values). */
function podEnv(workload: V1DaemonSet | V1Deployment): NodeJS.ProcessEnv {
  const sample: Record<string, string> = { 'spec.nodeName': 'node-0', 'metadata.name': 'pod-0', 'metadata.namespace': workload.metadata?.namespace ?? '' };
  const env: NodeJS.ProcessEnv = {};
  for (const variable of container(workload).env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    env[variable.name] = variable.value ?? (field ? sample[field] : undefined);
  }
  return env;
}

/** What the AKS workload identity webhook adds to a pod labelled for it. */
function workloadIdentityEnv(workload: V1Deployment, objects: Manifest[]): NodeJS.ProcessEnv {
  if (workload.spec?.template.metadata?.labels?.['azure.workload.identity/use'] !== 'true') return {};
  const account = one<V1ServiceAccount>(objects, 'ServiceAccount', workload.spec.template.spec?.serviceAccountName ?? '');
  return {
    AZURE_CLIENT_ID: account.metadata?.annotations?.['azure.workload.identity/client-id'],
    AZURE_TENANT_ID: '00000000-0000-0000-0000-000000000001',
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
  };
}

async function render(dir: string): Promise<Rendered> {
  const text = await testCluster().kubectl(['kustomize', dir]);
  const objects = parseAllDocuments(text).map((d) => d.toJS() as Manifest);
  const agentMap = one<V1ConfigMap>(objects, 'ConfigMap', 'nodepulse-agent-config-');
  const controllerMap = one<V1ConfigMap>(objects, 'ConfigMap', 'nodepulse-controller-config-');
  const agent = one<V1DaemonSet>(objects, 'DaemonSet', 'nodepulse-agent');
  const controller = one<V1Deployment>(objects, 'Deployment', 'nodepulse-controller');
  return {
    objects,
    agent,
    controller,
    // Loaded as the CLIs load them: the mounted file plus the container's environment.
    agentConfig: loadAgentConfig(mountedFile(agentMap, 'agent.yaml'), podEnv(agent)),
    controllerConfig: loadControllerConfig(mountedFile(controllerMap, 'controller.yaml'), {
      ...podEnv(controller),
      ...workloadIdentityEnv(controller, objects),
    }),
    agentConfigMapName: agentMap.metadata?.name ?? '',
    controllerConfigMapName: controllerMap.metadata?.name ?? '',
  };
}

const configMapOf = (workload: V1DaemonSet | V1Deployment) =>
  workload.spec?.template.spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name;
const configMountOf = (workload: V1DaemonSet | V1Deployment) => container(workload).volumeMounts?.find((m) => m.name === 'config')?.mountPath;

describe.each(Object.keys(overlays) as OverlayName[])('the %s overlay as kustomize renders it', (name) => {
  const promise = overlays[name];
  let rendered: Rendered;

  beforeAll(async () => {
    rendered = await render(overlayDir(name));
  });

  it('carries an agent config and a controller config that the agent and the controller accept', () => {
    expect(rendered.agentConfig.profile).toBe(promise.profile);
    expect(rendered.controllerConfig.provider.type).toBe(promise.provider);
    expect(configMapOf(rendered.agent)).toBe(rendered.agentConfigMapName);
    expect(configMapOf(rendered.controller)).toBe(rendered.controllerConfigMapName);
    // Each program is told to read the file where its ConfigMap is mounted.
    expect(container(rendered.agent).args).toEqual(['--config', `${configMountOf(rendered.agent)}/agent.yaml`]);
    expect(container(rendered.controller).args).toEqual(['--config', `${configMountOf(rendered.controller)}/controller.yaml`]);
  });

  it('points the agent at the host paths the DaemonSet mounts read-only, and serves on the port the probes use', () => {
    const { agent, agentConfig } = rendered;
    const agentContainer = container(agent);
    const readOnlyMounts = (agentContainer.volumeMounts ?? []).filter((m) => m.readOnly).map((m) => m.mountPath);
    const mounted = (path: string) => readOnlyMounts.some((m) => path === m || path.startsWith(`${m}/`));
    for (const path of [agentConfig.procRoot, agentConfig.sysRoot, ...agentConfig.probes.diskSpace.paths]) {
      expect(mounted(path), `${path} is under a read-only mount (${readOnlyMounts.join(', ')})`).toBe(true);
    }
    const health = agentContainer.ports?.find((p) => p.name === 'health');
    expect(health?.containerPort).toBe(agentConfig.server.port);
    expect(agentContainer.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
    expect(agentContainer.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'health' });
    // Reachable through the API server's pod proxy at the node's address (server.podAddress from
    // POD_IP); the rest of the endpoint stays on the node's loopback.
    expect(agent.spec?.template.spec?.hostNetwork).toBe(true);
    expect(agentConfig.server.address).toBe('127.0.0.1');
    expect(agentContainer.env?.find((e) => e.name === 'POD_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    expect(agentConfig.publish.enabled).toBe(true);
    expect(agentConfig.probes.konnectivity.enabled).toBe(true);
  });

  it('runs the agent on every node, tainted or not, ahead of ordinary pods', () => {
    const spec = rendered.agent.spec?.template.spec;
    expect(spec?.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(spec?.priorityClassName).toBe('system-node-critical');
    const env = container(rendered.agent).env ?? [];
    const fieldOf = (variable: string) => env.find((e) => e.name === variable)?.valueFrom?.fieldRef?.fieldPath;
    expect([fieldOf('NODE_NAME'), fieldOf('POD_NAME'), fieldOf('POD_NAMESPACE')]).toEqual(['spec.nodeName', 'metadata.name', 'metadata.namespace']);
  });

  it(`starts the agent privileged as root for /dev/kmsg, and ${promise.reboots ? 'keeps it root with host PID because it reboots nodes' : 'has it drop to uid 1000 with no capability'}`, () => {
    const { agent, agentConfig, controllerConfig } = rendered;
    const spec = agent.spec?.template.spec;
    expect(spec?.hostPID ?? false).toBe(promise.reboots);
    expect(spec?.securityContext).toMatchObject({ runAsUser: 0, runAsNonRoot: false, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container(agent).securityContext).toEqual({ privileged: true, allowPrivilegeEscalation: true, readOnlyRootFilesystem: true });
    const mounts = container(agent).volumeMounts ?? [];
    const hostPathOf = (mountPath: string) => spec?.volumes?.find((v) => v.name === mounts.find((m) => m.mountPath === mountPath)?.name)?.hostPath;
    expect(agentConfig.monitors.kernel).toMatchObject({ enabled: true, kmsgPath: '/dev/kmsg' });
    expect(hostPathOf('/dev/kmsg')).toEqual({ path: '/dev/kmsg', type: 'CharDevice' });
    expect(mounts.find((m) => m.mountPath === '/dev/kmsg')?.readOnly).toBe(true);
    // The runtime's folder, read-only, so a restarted containerd's new socket is seen.
    expect(agentConfig.probes.runtime).toMatchObject({ enabled: true, socketPath: '/run/containerd/containerd.sock' });
    expect(hostPathOf('/run/containerd')?.path).toBe('/run/containerd');
    expect(mounts.find((m) => m.mountPath === '/run/containerd')).toMatchObject({ readOnly: true, mountPropagation: 'HostToContainer' });
    expect(agentConfig.monitors.restarts.enabled).toBe(true);
    // Another user in the pod keeps the projected token 0644 for the agent once it is uid 1000.
    const init = spec?.initContainers ?? [];
    expect(init.map((c) => [c.name, c.args])).toEqual([['check-config', ['--check-config', '--config', `${configMountOf(agent)}/agent.yaml`]]]);
    expect(init[0]?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(agentConfig.reboot.enabled).toBe(promise.reboots);
    if (promise.reboots) {
      expect(agentConfig.reboot.annotation).toBe(controllerConfig.provider.agent.rebootRequestAnnotation);
      expect(agentConfig.security.runAsUser).toBeNull();
    } else {
      expect(agentConfig.security).toEqual({ runAsUser: 1000, runAsGroup: 1000, supplementaryGroups: [0] });
    }
  });

  it('runs two controller replicas electing a leader in their own namespace, with metrics on the declared port', () => {
    const { controller, controllerConfig } = rendered;
    expect(controller.spec?.replicas).toBe(2);
    const spread = controller.spec?.template.spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(spread.map((term) => term.podAffinityTerm.topologyKey)).toContain('kubernetes.io/hostname');
    expect(controllerConfig.leaderElection.namespace).toBe(controller.metadata?.namespace);
    const metrics = container(controller).ports?.find((p) => p.name === 'metrics');
    expect(metrics?.containerPort).toBe(controllerConfig.metrics.port);
    expect(container(controller).securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(rendered.objects.some((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'nodepulse-controller')).toBe(true);
  });

  it('holds the agent and the controller to the event source each program writes, by the ServiceAccount each runs as', () => {
    const policy = one<V1ValidatingAdmissionPolicy>(rendered.objects, 'ValidatingAdmissionPolicy', 'nodepulse-own-event-source');
    const own = policy.spec?.variables?.find((v) => v.name === 'own')?.expression ?? '';
    const who = policy.spec?.matchConditions?.map((c) => c.expression).join(' ') ?? '';
    const account = (workload: V1DaemonSet | V1Deployment) => `system:serviceaccount:${workload.metadata?.namespace}:${workload.spec?.template.spec?.serviceAccountName}`;
    expect(own).toBe(`request.userInfo.username == '${account(rendered.agent)}' ? '${components.agent}' : '${components.controller}'`);
    expect(who).toContain(`'${account(rendered.agent)}'`);
    expect(who).toContain(`'${account(rendered.controller)}'`);
    expect(rendered.controllerConfig.events.reportingComponent).toBe(components.controller);
    expect(rendered.controllerConfig.platform.remediatorSources).not.toContain(components.agent);
  });
});

/** The error of a request the API server refused; fails the test if the request succeeded. */
async function refusal(request: Promise<unknown>): Promise<KubeApiError> {
  const outcome = await request.then(
    (answer) => new Error(`expected a refusal, but the API server accepted: ${JSON.stringify(answer).slice(0, 200)}`),
    (error: unknown) => error,
  );
  if (!(outcome instanceof KubeApiError)) throw outcome;
  return outcome;
}

const condition = (message: string): V1NodeCondition => ({
  type: 'KubeletProblem',
  status: 'True',
  reason: 'KubeletUnhealthy',
  message,
  lastHeartbeatTime: new Date(),
  lastTransitionTime: new Date(),
});

const kubeletEvent = (node: string) =>
  nodeEvent({ node: { name: node }, type: 'Warning', reason: 'KubeletUnhealthy', message: 'kubelet healthz answered 500', component: 'nodepulse-agent', host: node, now: new Date() });

describe('the manifests on a real control plane with three simulated nodes', () => {
  let plane: ControlPlane;
  let work: string;

  const rollout = (kind: 'daemonset' | 'deployment', name: string) =>
    plane.kubectl(['rollout', 'status', `${kind}/${name}`, '-n', 'nodepulse', '--timeout=150s'], { timeoutMs: 170_000 });
  const json = async <T>(args: string[]): Promise<T> => JSON.parse(await plane.kubectl([...args, '-o', 'json'])) as T;
  const agentPods = async () =>
    (await json<{ items: V1Pod[] }>(['get', 'pods', '-n', 'nodepulse', '-l', 'app.kubernetes.io/name=nodepulse-agent'])).items.filter(
      (p) => !p.metadata?.deletionTimestamp,
    );
  const agentPodOn = async (node: string) => {
    const pod = (await agentPods()).find((p) => p.spec?.nodeName === node);
    if (!pod) throw new Error(`no agent pod on ${node}`);
    return pod;
  };

  beforeAll(async () => {
    plane = await startControlPlane({ profile: 'full', nodes: 3 });
    work = mkdtempSync(join(tmpdir(), 'nodepulse-manifests-'));
  });

  afterAll(async () => {
    await plane?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('passes a server-side dry run of every overlay: schema, RBAC objects and admission checked by the API server', async () => {
    // A dry run creates no Namespace, and the API server refuses objects in a missing one.
    await plane.kubectl(['apply', '-f', join(manifests, 'base', 'namespace.yaml')]);
    for (const name of Object.keys(overlays)) {
      const out = await plane.kubectl(['apply', '--dry-run=server', '-k', overlayDir(name)]);
      expect(out, name).toMatch(/daemonset\.apps\/nodepulse-agent (created|configured|unchanged) \(server dry run\)/);
      expect(out, name).toMatch(/validatingadmissionpolicy\.admissionregistration\.k8s\.io\/nodepulse-agent-own-node (created|configured|unchanged) \(server dry run\)/);
      expect(out, name).toMatch(/validatingadmissionpolicy\.admissionregistration\.k8s\.io\/nodepulse-own-event-source (created|configured|unchanged) \(server dry run\)/);
    }
  });

  it('installs the generic overlay: the agent rolls out to every node and both controller replicas become ready', async () => {
    await plane.kubectl(['apply', '-k', overlayDir('generic')]);
    await rollout('daemonset', 'nodepulse-agent');
    await rollout('deployment', 'nodepulse-controller');

    const pods = await agentPods();
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual([...plane.nodeNames].sort());
    const daemonSet = await json<V1DaemonSet>(['get', 'daemonset/nodepulse-agent', '-n', 'nodepulse']);
    expect(daemonSet.status?.numberReady).toBe(plane.nodeNames.length);
    const deployment = await json<V1Deployment>(['get', 'deployment/nodepulse-controller', '-n', 'nodepulse']);
    expect(deployment.status?.readyReplicas).toBe(2);
  });

  it('rolls the agents and the controllers out again after a config change and a new image tag', async () => {
    // An overlay of the generic overlay, as an operator would keep one.
    const dir = join(work, 'my-overlay');
    mkdirSync(dir);
    const config = parse(readFileSync(join(manifests, 'base', 'agent-config.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    config.publish = { ...config.publish, heartbeatSeconds: 120 };
    writeFileSync(join(dir, 'agent.yaml'), stringify(config));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      stringify({
        resources: [relative(dir, overlayDir('generic'))],
        configMapGenerator: [{ name: 'nodepulse-agent-config', namespace: 'nodepulse', behavior: 'replace', files: ['agent.yaml'] }],
        images: [{ name: 'nodepulse', newTag: '0.1.1' }],
      }),
    );
    const before = await render(overlayDir('generic'));
    const after = await render(dir);
    expect(after.agentConfigMapName).not.toBe(before.agentConfigMapName);

    await plane.kubectl(['apply', '-k', dir]);
    await rollout('daemonset', 'nodepulse-agent');
    await rollout('deployment', 'nodepulse-controller');

    const pods = await agentPods();
    expect(pods).toHaveLength(plane.nodeNames.length);
    for (const pod of pods) {
      expect(pod.spec?.containers[0]?.image).toBe('nodepulse:0.1.1');
      expect(pod.spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name).toBe(after.agentConfigMapName);
    }
    const controllers = (await json<{ items: V1Pod[] }>(['get', 'pods', '-n', 'nodepulse', '-l', 'app.kubernetes.io/name=nodepulse-controller'])).items;
    expect(controllers.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.spec?.containers[0]?.image)).toEqual(['nodepulse:0.1.1', 'nodepulse:0.1.1']);
  });

  describe("node-scoped agent credentials (the admission policy), through the agent's own API client", () => {
    // A proxyable address for the pods (the API server's pod proxy refuses loopback); it
    // exists only on a veth link on this machine.
    const network = new TestNetwork();
    let nodeA: string;
    let nodeB: string;
    let podA: string;
    let podB: string;
    let agentOfA: AgentKubeApi;

    beforeAll(async () => {
      [nodeA, nodeB] = plane.nodeNames as [string, string];
      const pods = [await agentPodOn(nodeA), await agentPodOn(nodeB)];
      [podA, podB] = pods.map((p) => p.metadata?.name ?? '') as [string, string];
      agentOfA = new AgentKubeApi(new KubeClient(kubeconfigCredentials(await podBoundKubeconfig(plane, pods[0] as V1Pod))));
      network.create();
      const core = plane.adminKubeConfig().makeApiClient(CoreV1Api);
      for (const name of [podA, podB]) {
        const ip = network.hostAddress;
        await core.patchNamespacedPodStatus(
          { namespace: 'nodepulse', name, body: { status: { podIP: ip, podIPs: [{ ip }] } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      }
    });

    afterAll(() => {
      agentOfA?.client.close();
      network.destroy();
    });

    it('lets the agent of node A publish a condition on node A', async () => {
      await agentOfA.patchNodeConditions(nodeA, [condition('published by the agent of A')]);
      expect(await plane.kubectl(['describe', 'node', nodeA])).toMatch(/KubeletProblem\s+True\s+.*KubeletUnhealthy\s+published by the agent of A/);
    });

    it('refuses the agent of node A when it patches the status of node B', async () => {
      const error = await refusal(agentOfA.patchNodeConditions(nodeB, [condition('forged by the agent of A')]));
      expect(error.status).toBe(403);
      expect(error.message).toContain(`the nodepulse agent on node ${nodeA} may not write the status of node ${nodeB}`);
      expect(await plane.kubectl(['describe', 'node', nodeB])).not.toContain('forged by the agent of A');
    });

    it('lets the agent of node A post and update events about node A and refuses events about node B', async () => {
      const posted = await agentOfA.createEvent('default', kubeletEvent(nodeA));
      await agentOfA.patchEvent('default', posted.metadata?.name ?? '', { count: 2 });
      const error = await refusal(agentOfA.createEvent('default', kubeletEvent(nodeB)));
      expect(error.status).toBe(403);
      expect(error.message).toContain(`the nodepulse agent on node ${nodeA} may only post events about that node`);
      const events = await plane.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'reason=KubeletUnhealthy', '-o', 'jsonpath={.items[*].involvedObject.name}']);
      expect(events.split(' ')).toEqual([nodeA]);
    });

    it("refuses the agent's token an Event claiming to come from aks-auto-repair, and still takes its own", async () => {
      const asAks = nodeEvent({ node: { name: nodeA }, type: 'Normal', reason: 'NodeRebootStart', message: 'forged by the agent of A', component: components.aksAutoRepair, host: nodeA, now: new Date() });
      const bySource = await refusal(agentOfA.createEvent('default', asAks));
      expect(bySource.status).toBe(403);
      expect(bySource.message).toContain("nodepulse-agent may only write events with source.component nodepulse-agent, not 'aks-auto-repair'");
      const reportingAsAks = { ...kubeletEvent(nodeA), reportingComponent: components.aksAutoRepair };
      const byReporting = await refusal(agentOfA.createEvent('default', reportingAsAks));
      expect(byReporting.status).toBe(403);
      expect(byReporting.message).toContain("nodepulse-agent may only write events with reportingComponent nodepulse-agent, not 'aks-auto-repair'");
      // A repeat of its own event (a count bump) cannot turn it into another component's either.
      const own = await agentOfA.createEvent('default', kubeletEvent(nodeA));
      const relabelled = await refusal(agentOfA.patchEvent('default', own.metadata?.name ?? '', { source: { component: components.aksAutoRepair } }));
      expect(relabelled.status).toBe(403);
      await agentOfA.patchEvent('default', own.metadata?.name ?? '', { count: 2 });
      const forged = await plane.kubectl(['get', 'events', '-A', '--field-selector', 'source=aks-auto-repair', '-o', 'jsonpath={.items[*].metadata.name}']);
      expect(forged).toBe('');
    });

    it("lets the agent reach its own pod through the API server's pod proxy, and no other pod", async () => {
      const server: Server = createServer((_, res) => res.end('agent endpoint\n'));
      await new Promise<void>((done) => server.listen(0, network.hostAddress, done));
      const port = (server.address() as AddressInfo).port;
      try {
        expect(await agentOfA.proxyGetPod('nodepulse', podA, port, '/healthz', 10_000)).toBe('agent endpoint\n');
        const error = await refusal(agentOfA.proxyGetPod('nodepulse', podB, port, '/healthz', 10_000));
        expect(error.status).toBe(403);
        expect(error.message).toContain(`the nodepulse agent pod ${podA} may only proxy to itself, not to ${podB}:${port}`);
      } finally {
        await new Promise((done) => server.close(done));
      }
    });

    it('refuses every write with an agent token that is not bound to a pod on a node', async () => {
      const unbound = new AgentKubeApi(new KubeClient(kubeconfigCredentials(await plane.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent'))));
      try {
        const error = await refusal(unbound.patchNodeConditions(nodeA, [condition('unbound token')]));
        expect(error.status).toBe(403);
        expect(error.message).toContain("the nodepulse agent's token names no node");
      } finally {
        unbound.client.close();
      }
    });
  });

  it("refuses the controller's token an Event claiming to come from aks-auto-repair, and still takes its own", async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(await plane.serviceAccountKubeconfig('nodepulse', 'nodepulse-controller'));
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const [node] = plane.nodeNames as [string];
    const event = (component: string) => nodeEvent({ node: { name: node }, type: 'Normal', reason: 'NodeRebootStart', message: `written as ${component}`, component, host: 'controller-0', now: new Date() });
    const refused = await core.createNamespacedEvent({ namespace: 'default', body: event(components.aksAutoRepair) }).then(
      () => new Error('the API server accepted an aks-auto-repair event from the controller'),
      (error: unknown) => error,
    );
    if (!(refused instanceof ApiException)) throw refused;
    expect(refused.code).toBe(403);
    expect(String(refused.body)).toContain("nodepulse-controller may only write events with source.component nodepulse-controller, not 'aks-auto-repair'");
    const accepted = await core.createNamespacedEvent({ namespace: 'default', body: event(components.controller) });
    expect(accepted.source?.component).toBe(components.controller);
  });

  it('switching to the agent-reboot overlay rolls the agents out again, now with host PID', async () => {
    await plane.kubectl(['apply', '-k', overlayDir('agent-reboot')]);
    await rollout('daemonset', 'nodepulse-agent');
    await rollout('deployment', 'nodepulse-controller');

    const pods = await agentPods();
    expect(pods).toHaveLength(plane.nodeNames.length);
    for (const pod of pods) {
      expect(pod.spec?.hostPID).toBe(true);
      expect(pod.spec?.containers[0]?.securityContext?.privileged).toBe(true);
    }
  });
});
