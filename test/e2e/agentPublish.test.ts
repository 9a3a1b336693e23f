import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1NodeCondition } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import { TestDnsServer } from '../support/dnsServer.js';
import { onlyProbes } from '../support/onlyProbes.js';

const cluster = testCluster();
const core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
const repo = join(import.meta.dirname, '../..');
/** The boot ID every test host starts with (/proc/sys/kernel/random/boot_id). */
const FIRST_BOOT = '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c';
const work = mkdtempSync(join(tmpdir(), 'nodepulse-e2e-publish-'));

/** Probe cadence in these tests: 1 s samples, 2 bad to raise, 2 good to clear. */
const intervalMs = 1000;
const threshold = 2;
/** The bound (threshold x interval + one interval) plus the status write and 100 ms polling on a loaded 2-core CI machine. */
const detectionBoundMs = threshold * intervalMs + intervalMs + 1000;

let dns: TestDnsServer;
let agentKubeconfig: string;
let agent: AgentProcess | undefined;

const kubeletConditions = (ready: 'True' | 'False', message: string): V1NodeCondition[] => {
  const now = new Date().toISOString() as unknown as Date;
  return [
    { type: 'Ready', status: ready, reason: ready === 'True' ? 'KubeletReady' : 'KubeletNotReady', message, lastHeartbeatTime: now, lastTransitionTime: now },
    { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available', lastHeartbeatTime: now, lastTransitionTime: now },
    { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure', lastHeartbeatTime: now, lastTransitionTime: now },
    { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available', lastHeartbeatTime: now, lastTransitionTime: now },
  ];
};

/** The kubelet's (or another tool's) status write, as admin, merged by condition type. */
async function patchConditionsAsAdmin(node: string, conditions: V1NodeCondition[]): Promise<void> {
  await core.patchNodeStatus({ name: node, body: { status: { conditions } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
}

async function createNode(name: string): Promise<void> {
  await core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/os': 'linux' } } } });
  await patchConditionsAsAdmin(name, kubeletConditions('True', 'kubelet is posting ready status'));
}

async function condition(node: string, type: string): Promise<V1NodeCondition | undefined> {
  const n = await core.readNode({ name: node });
  return n.status?.conditions?.find((c) => c.type === type);
}

/** A fixture /proc with only what the cpu probe reads: PSI cpu at the given some avg10. */
function procWithCpuPressure(dir: string, someAvg10: number): string {
  mkdirSync(join(dir, 'pressure'), { recursive: true });
  writeFileSync(
    join(dir, 'pressure/cpu'),
    `some avg10=${someAvg10.toFixed(2)} avg60=1.00 avg300=1.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`,
  );
  return dir;
}

async function agentConfig(node: string, overrides: { probes?: Record<string, unknown>; publish?: Record<string, unknown>; reboot?: Record<string, unknown> } = {}) {
  const procRoot = procWithCpuPressure(join(work, `proc-${node}`), 1);
  // The host's boot ID, for the reboot-on-request rule.
  mkdirSync(join(procRoot, 'sys/kernel/random'), { recursive: true });
  writeFileSync(join(procRoot, 'sys/kernel/random/boot_id'), `${FIRST_BOOT}\n`);
  return {
    nodeName: node,
    kubeconfig: agentKubeconfig,
    procRoot,
    sysRoot: join(work, 'no-sys'),
    server: { address: '127.0.0.1', port: await freeLoopbackPort() },
    publish: { enabled: true, heartbeatSeconds: 300, backoffMaxSeconds: 2, ...overrides.publish },
    ...(overrides.reboot ? { reboot: overrides.reboot } : {}),
    probes: {
      ...onlyProbes({
        cpu: { intervalSeconds: 1, failureThreshold: threshold, recoveryThreshold: threshold, someAvg10Percent: 50 },
        dns: {
          intervalSeconds: 1,
          failureThreshold: threshold,
          recoveryThreshold: threshold,
          timeoutMs: 300,
          checks: [{ name: 'ClusterDNS', server: dns.address, query: 'kubernetes.default.svc.cluster.local', type: 'A' }],
        },
      }),
      ...overrides.probes,
    },
  };
}

async function startAgent(node: string, overrides: Parameters<typeof agentConfig>[1] = {}, name = node): Promise<AgentProcess> {
  agent = AgentProcess.start(work, name, await agentConfig(node, overrides));
  return agent;
}

/** Our condition types, initialised: proof the agent wrote as itself and the checks exist. */
async function waitForInitialConditions(node: string, a: AgentProcess): Promise<void> {
  await eventually('the agent to initialise its conditions', async () => ((await condition(node, 'DNSProblem'))?.reason === 'DNSHealthy' ? true : undefined), 20_000, a);
}

/** PATCH nodes/status requests the API server has answered, from its own /metrics. */
async function statusPatchCount(): Promise<number> {
  const text = await cluster.kubectl(['get', '--raw', '/metrics']);
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('apiserver_request_total{') && line.includes('resource="nodes"') && line.includes('subresource="status"') && line.includes('verb="PATCH"')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

beforeAll(async () => {
  await cluster.kubectl(['apply', '-f', join(repo, 'manifests/base/namespace.yaml'), '-f', join(repo, 'manifests/base/agent-rbac.yaml')]);
  agentKubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  dns = await TestDnsServer.start({ records: { A: ['10.0.0.1'] } });
});

afterEach(async () => {
  await agent?.stop();
  agent = undefined;
  dns.setMode('answer');
});

afterAll(async () => {
  await dns?.stop();
});

describe('agent in a cluster, as its ServiceAccount', () => {
  it('shows every check in kubectl describe node from the start, next to the kubelet conditions', async () => {
    const node = 'e2e-publish-init';
    await createNode(node);
    const a = await startAgent(node);
    await waitForInitialConditions(node, a);
    const described = await cluster.kubectl(['describe', 'node', node]);
    expect(described).toMatch(/DNSProblem\s+False\s+.*DNSHealthy/);
    expect(described).toMatch(/CPUPressureProblem\s+False\s+.*CPUPressureNormal/);
    expect(described).toMatch(/Ready\s+True\s+.*KubeletReady/);
    for (const absent of ['MemoryPressureProblem', 'KonnectivityProblem']) expect(described).not.toContain(absent);
  });

  it('a DNS server turning to SERVFAIL raises DNSProblem within threshold x interval + interval, visible in kubectl, and recovery clears it', async () => {
    const node = 'e2e-publish-dns';
    await createNode(node);
    const a = await startAgent(node);
    await waitForInitialConditions(node, a);

    const faultAt = Date.now();
    dns.setMode('servfail');
    const raised = await eventually('DNSProblem True', async () => {
      const c = await condition(node, 'DNSProblem');
      return c?.status === 'True' ? c : undefined;
    }, detectionBoundMs + 5000, a);
    const latency = Date.now() - faultAt;
    expect(latency).toBeLessThanOrEqual(detectionBoundMs);
    expect(raised.reason).toBe('ClusterDNSServfail');
    expect(raised.message).toMatch(/ClusterDNS/);
    expect(raised.message).toContain(dns.address);

    const described = await cluster.kubectl(['describe', 'node', node]);
    expect(described).toMatch(/DNSProblem\s+True\s+.*ClusterDNSServfail\s+.*ClusterDNS/);
    const events = await eventually('the transition event', async () => {
      const text = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node}`, '-o', 'custom-columns=REASON:.reason,TYPE:.type,SOURCE:.source.component,MESSAGE:.message']);
      return /ClusterDNSServfail\s+Warning\s+nodepulse-agent/.test(text) ? text : undefined;
    }, 10_000, a);
    expect(events).toContain(dns.address);

    dns.setMode('answer');
    const cleared = await eventually('DNSProblem False again', async () => {
      const c = await condition(node, 'DNSProblem');
      return c?.status === 'False' ? c : undefined;
    }, detectionBoundMs + 5000, a);
    expect(cleared.reason).toBe('DNSHealthy');
    await eventually('the recovery event', async () => {
      const text = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node},reason=DNSHealthy`, '-o', 'name']);
      return text.trim() ? text : undefined;
    }, 10_000, a);
  });

  it('CPU pressure in PSI raises CPUPressureProblem with the measured figure, and clears when it drops', async () => {
    const node = 'e2e-publish-cpu';
    await createNode(node);
    const a = await startAgent(node);
    await waitForInitialConditions(node, a);
    const procRoot = join(work, `proc-${node}`);
    const faultAt = Date.now();
    procWithCpuPressure(procRoot, 93.5);
    const raised = await eventually('CPUPressureProblem True', async () => {
      const c = await condition(node, 'CPUPressureProblem');
      return c?.status === 'True' ? c : undefined;
    }, detectionBoundMs + 5000, a);
    expect(Date.now() - faultAt).toBeLessThanOrEqual(detectionBoundMs);
    expect(raised).toMatchObject({ reason: 'CPUPressureHigh' });
    expect(raised.message).toContain('93.5%');
    procWithCpuPressure(procRoot, 2);
    await eventually('CPUPressureProblem False', async () => ((await condition(node, 'CPUPressureProblem'))?.status === 'False' ? true : undefined), detectionBoundMs + 5000, a);
  });

  it("never drops or rewrites the kubelet's conditions or another tool's while both write concurrently", async () => {
    const node = 'e2e-publish-concurrent';
    await createNode(node);
    await patchConditionsAsAdmin(node, [{ type: 'FrequentContainerdRestart', status: 'False', reason: 'NoFrequentContainerdRestart', message: 'another tool' }]);
    const a = await startAgent(node);
    await waitForInitialConditions(node, a);

    // The kubelet flips Ready 40 times while the agent raises and clears DNSProblem.
    let last: 'True' | 'False' = 'True';
    const kubelet = (async () => {
      for (let i = 0; i < 40; i++) {
        last = i % 2 === 0 ? 'False' : 'True';
        await patchConditionsAsAdmin(node, kubeletConditions(last, `kubelet write ${i}`));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    dns.setMode('servfail');
    await eventually('DNSProblem True during kubelet writes', async () => ((await condition(node, 'DNSProblem'))?.status === 'True' ? true : undefined), 15_000, a);
    dns.setMode('answer');
    await kubelet;
    await eventually('DNSProblem False', async () => ((await condition(node, 'DNSProblem'))?.status === 'False' ? true : undefined), 15_000, a);

    const n = await core.readNode({ name: node });
    const byType = new Map((n.status?.conditions ?? []).map((c) => [c.type, c]));
    expect(byType.get('Ready')).toMatchObject({ status: last, message: 'kubelet write 39' });
    for (const type of ['MemoryPressure', 'DiskPressure', 'PIDPressure']) expect(byType.get(type)?.status).toBe('False');
    expect(byType.get('FrequentContainerdRestart')).toMatchObject({ status: 'False', message: 'another tool' });
    expect(byType.get('CPUPressureProblem')?.status).toBe('False');
  });

  it('at steady state writes the node status once per heartbeat, not once per sample', async () => {
    const node = 'e2e-publish-steady';
    await createNode(node);
    const heartbeatSeconds = 4;
    const a = await startAgent(node, { publish: { heartbeatSeconds, heartbeatJitter: 0 } });
    await waitForInitialConditions(node, a);
    // Let the first heartbeat (its phase comes from the node name) pass before counting.
    await new Promise((resolve) => setTimeout(resolve, heartbeatSeconds * 1000 + 500));
    const windowSeconds = 16;
    const before = await statusPatchCount();
    await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
    const writes = (await statusPatchCount()) - before;
    const samples = (windowSeconds / (intervalMs / 1000)) * 2;
    // 16 s at one beat per 4 s is 4 writes (3 to 5 by where the window falls); 32 samples were taken.
    expect(writes).toBeGreaterThanOrEqual(3);
    expect(writes).toBeLessThanOrEqual(5);
    expect(writes).toBeLessThan(samples / 4);
  });

  it('a restarted agent adopts its conditions: no spurious transition, the transition time is kept', async () => {
    const node = 'e2e-publish-restart';
    await createNode(node);
    let a = await startAgent(node);
    await waitForInitialConditions(node, a);
    dns.setMode('servfail');
    const raised = await eventually('DNSProblem True', async () => {
      const c = await condition(node, 'DNSProblem');
      return c?.status === 'True' ? c : undefined;
    }, 15_000, a);
    await a.stop();
    const eventsBefore = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node}`, '-o', 'name']);

    a = await startAgent(node, {}, `${node}-2`);
    // Several samples at the new agent, the problem still there.
    await eventually('the restarted agent to publish', async () => (a.logLines.some((l) => l.includes('adopted node conditions')) ? true : undefined), 15_000, a);
    await new Promise((resolve) => setTimeout(resolve, 4 * intervalMs));
    const after = await condition(node, 'DNSProblem');
    expect(after).toMatchObject({ status: 'True', reason: 'ClusterDNSServfail' });
    expect(new Date(after?.lastTransitionTime as unknown as string).getTime()).toBe(new Date(raised.lastTransitionTime as unknown as string).getTime());
    const eventsAfter = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node}`, '-o', 'name']);
    expect(eventsAfter.trim().split('\n').sort()).toEqual(eventsBefore.trim().split('\n').sort());
  });

  it('a probe that cannot read /proc shows Unknown ProbeReadError on the Node, naming the file, never True', async () => {
    const node = 'e2e-publish-procroot';
    await createNode(node);
    // A wrong procRoot, as a DaemonSet with a bad mount would run it.
    const missing = join(work, 'no-such-proc');
    const config = await agentConfig(node, { probes: { memory: { intervalSeconds: 1, failureThreshold: threshold, recoveryThreshold: threshold } } });
    agent = AgentProcess.start(work, node, { ...config, procRoot: missing });
    const c = await eventually(
      'MemoryPressureProblem to turn Unknown',
      async () => {
        const found = await condition(node, 'MemoryPressureProblem');
        return found?.status === 'Unknown' ? found : undefined;
      },
      detectionBoundMs + 5000,
      agent,
    );
    expect(c).toMatchObject({ reason: 'ProbeReadError' });
    expect(c.message).toContain(`cannot use ${join(missing, 'meminfo')}`);
    expect(await condition(node, 'CPUPressureProblem')).toMatchObject({ status: 'Unknown', reason: 'ProbeReadError' });
  });

  it("switching a probe off removes the condition it owned and leaves everyone else's", async () => {
    const node = 'e2e-publish-disable';
    await createNode(node);
    await patchConditionsAsAdmin(node, [{ type: 'FrequentKubeletRestart', status: 'False', reason: 'NoFrequentKubeletRestart', message: 'npd' }]);
    let a = await startAgent(node);
    await waitForInitialConditions(node, a);
    await a.stop();
    a = await startAgent(node, { probes: { dns: { enabled: false } } }, `${node}-nodns`);
    await eventually('DNSProblem removed', async () => ((await condition(node, 'DNSProblem')) === undefined ? true : undefined), 15_000, a);
    const types = ((await core.readNode({ name: node })).status?.conditions ?? []).map((c) => c.type).sort();
    expect(types).toEqual(['CPUPressureProblem', 'DiskPressure', 'FrequentKubeletRestart', 'MemoryPressure', 'PIDPressure', 'Ready']);
  });

  it('reboots the host once per request for its current boot ID when the controller asks through the Node annotation (agent provider)', async () => {
    const node = 'e2e-publish-reboot';
    await createNode(node);
    const rebootLog = join(work, 'reboots.log');
    writeFileSync(rebootLog, '');
    const a = await startAgent(node, { reboot: { enabled: true, command: ['sh', '-c', `echo rebooted >> ${rebootLog}`] } });
    await waitForInitialConditions(node, a);
    const reboots = () => readFileSync(rebootLog, 'utf8').split('\n').filter(Boolean).length;
    const request = async (annotations: Record<string, string>) => {
      await core.patchNode({ name: node, body: { metadata: { annotations } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    };
    await request({ 'nodepulse.io/reboot-request': FIRST_BOOT });
    await eventually('the reboot command to run', async () => (reboots() === 1 ? true : undefined), 15_000, a);
    // Another change to the Node is not a new request.
    await request({ unrelated: 'change' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(reboots()).toBe(1);
    // The host came back with a new boot ID; the controller asks for that boot.
    const secondBoot = '9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d';
    writeFileSync(join(work, `proc-${node}`, 'sys/kernel/random/boot_id'), `${secondBoot}\n`);
    await request({ 'nodepulse.io/reboot-request': secondBoot });
    await eventually('the second request to be served', async () => (reboots() === 2 ? true : undefined), 15_000, a);
    await eventually('the RebootingOnRequest event', async () => {
      const text = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node},reason=RebootingOnRequest`, '-o', 'name']);
      return text.trim() ? true : undefined;
    }, 10_000, a);
  });

  it('runs on the ServiceAccount mount as in a pod, and picks up a rotated token', async () => {
    const node = 'e2e-publish-incluster';
    await createNode(node);
    // The mount a pod gets: the CA and a token file, plus the service environment variables.
    const mount = join(work, 'serviceaccount');
    mkdirSync(mount, { recursive: true });
    const kubeconfigDoc = parseYaml(readFileSync(agentKubeconfig, 'utf8')) as {
      clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
      users: Array<{ user: { token: string } }>;
    };
    const cluster0 = kubeconfigDoc.clusters[0]?.cluster;
    writeFileSync(join(mount, 'ca.crt'), Buffer.from(cluster0?.['certificate-authority-data'] ?? '', 'base64'));
    writeFileSync(join(mount, 'token'), 'not-a-valid-token');
    const server = new URL(cluster0?.server ?? '');
    const { kubeconfig: _offCluster, ...config } = await agentConfig(node);
    const a = AgentProcess.start(work, node, { ...config, serviceAccountDir: mount }, { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port });
    agent = a;
    await eventually('the agent to be refused with the stale token', async () => (a.logLines.some((l) => l.includes('401')) ? true : undefined), 15_000, a);
    // The kubelet rotates the projected token: the agent reads the new one after a 401.
    writeFileSync(join(mount, 'token'), kubeconfigDoc.users[0]?.user.token ?? '');
    await waitForInitialConditions(node, a);
  });

  it('stops with a clear error when NODE_NAME names no Node', async () => {
    const a = await startAgent('e2e-no-such-node');
    const code = await a.exited;
    expect(code).toBe(1);
    expect(a.logTail()).toContain('node "e2e-no-such-node" does not exist');
  });

  it('the agent ServiceAccount cannot delete nodes', async () => {
    const node = 'e2e-publish-rbac';
    await createNode(node);
    await expect(cluster.kubectl(['delete', 'node', node], { kubeconfig: agentKubeconfig })).rejects.toThrow(/forbidden/i);
  });
});
