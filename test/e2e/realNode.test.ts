import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync, existsSync, statfsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { CoreV1Event, V1DaemonSet, V1Node, V1NodeCondition, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { conditionTypeByProbe, ownedConditionTypes, probeReasons, restartConditionTypes, stepEventReason } from '../../common/contract.js';
import { repoRoot } from '../cluster/binaries.js';
import { KWOK_NODE_ANNOTATION } from '../cluster/kwokNodes.js';
import { APISERVER_CONFIGMAP, NODE_IMAGE, type NodeCluster, startNodeCluster } from '../cluster/nodeCluster.js';
import { containerMemory } from '../cluster/podMemory.js';
import { CALM_CPU_PRESSURE } from '../cluster/realNode.js';
import { eventually } from '../support/cliProcess.js';

/**
 * The shipped manifests on a real node: kubelet + containerd (test/cluster/realNode.ts) run the
 * agent DaemonSet and the controller Deployment from the image the Dockerfile builds, through
 * test/manifests/real-node (the generic overlay; image, API server address and test timings the
 * only changes). The node lives in namespaces of its own whose only way out is a veth to the
 * API server. One file, one node: the tests run in order and build on each other.
 */
// Rollouts on a real kubelet take longer than the cluster project's 180 s budget allows on a loaded 2-core box.
vi.setConfig({ testTimeout: 300_000 });

const MiB = 1024 * 1024;
const manifestsDir = join(repoRoot(), 'test', 'manifests');
const work = mkdtempSync(join(tmpdir(), 'nodepulse-real-node-test-'));
let cluster: NodeCluster;
let dns: { setMode: (mode: string) => Promise<void>; stop: () => void };
let kwokNode: string;

const kubectl = (args: string[], timeoutMs?: number) => cluster.plane.kubectl(args, timeoutMs ? { timeoutMs } : {});
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
const node = () => cluster.node;
const rollout = (kind: 'daemonset' | 'deployment', name: string) =>
  kubectl(['rollout', 'status', `${kind}/${name}`, '-n', 'nodepulse', '--timeout=240s'], 260_000);

async function conditionsOf(name: string): Promise<V1NodeCondition[]> {
  return (await json<V1Node>(['get', 'node', name])).status?.conditions ?? [];
}

/** Waits until the real node's `type` condition has `status` (and, if given, a reason matching). */
function condition(type: string, status: 'True' | 'False', reason?: RegExp, timeoutMs = 90_000): Promise<V1NodeCondition> {
  return eventually(
    `${type}=${status}${reason ? ` (${reason})` : ''} on ${node().name}`,
    async () => (await conditionsOf(node().name)).find((c) => c.type === type && c.status === status && (!reason || reason.test(c.reason ?? ''))),
    timeoutMs,
    [],
    500,
  );
}

/** The agent pod on the real node (not on the kwok node), once it is not being deleted. */
async function agentPod(): Promise<V1Pod> {
  const pods = await json<{ items: V1Pod[] }>(['get', 'pods', '-n', 'nodepulse', '-l', 'app.kubernetes.io/name=nodepulse-agent']);
  const pod = pods.items.find((p) => p.spec?.nodeName === node().name && !p.metadata?.deletionTimestamp);
  if (!pod) throw new Error(`no agent pod on ${node().name}`);
  return pod;
}

const podReady = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** Runs a Node.js snippet inside the agent's own container, through the API server, the kubelet and containerd (kubectl exec). */
async function inAgentContainer(code: string): Promise<string> {
  return kubectl(['exec', '-n', 'nodepulse', (await agentPod()).metadata?.name ?? '', '-c', 'agent', '--', 'node', '-e', code]);
}

interface LocalCondition {
  type: string;
  status: string;
  reason: string;
  message?: string;
}

/** What the agent's own endpoint says, asked from inside the node (/conditions is served on the node's loopback only). */
async function localConditions(): Promise<LocalCondition[]> {
  const code = "require('node:http').get('http://127.0.0.1:20258/conditions', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b)); })";
  const body = JSON.parse(await node().namespaces.exec(process.execPath, ['-e', code])) as { conditions: LocalCondition[] };
  return body.conditions;
}

/** A TCP connect from inside the node's network namespace; resolves with the error code (or 'connected'). */
async function connectFromNode(address: string, port: number): Promise<string> {
  const code = `const s = require('node:net').connect(${port}, '${address}'); s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('error', (e) => console.log(e.code)); s.setTimeout(3000, () => { console.log('timeout'); s.destroy(); });`;
  return (await node().namespaces.exec(process.execPath, ['-e', code])).trim();
}

beforeAll(async () => {
  cluster = await startNodeCluster({ kwokNodes: 1 });
  [kwokNode] = cluster.plane.nodeNames as [string];
  // The controller replicas belong on the real node: the kwok node takes nothing but DaemonSets (which tolerate everything).
  await kubectl(['taint', 'node', kwokNode, 'nodepulse.io/test-simulated=true:NoSchedule']);
  dns = await node().startDnsServer();
  await kubectl(['apply', '-k', join(manifestsDir, 'real-node')]);
}, 1_200_000);

afterAll(async () => {
  dns?.stop();
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('a real node with no way out but its veth to the API server', () => {
  it('reaches the API server on the host end of its veth, and nothing else: every other address is ENETUNREACH', async () => {
    const { hostAddress } = node().addresses;
    const { port } = new URL(cluster.plane.server);
    expect(await connectFromNode(hostAddress, Number(port))).toBe('connected');
    // The `kubernetes` Service's address the kubelet would inject, Azure DNS, a public address.
    for (const address of ['10.0.0.1', '168.63.129.16', '1.1.1.1']) {
      expect(await connectFromNode(address, 443), address).toBe('ENETUNREACH');
    }
  });

  it("runs the agent's and the controller's pods with KUBERNETES_SERVICE_HOST on the veth, from the harness's ConfigMap", async () => {
    const map = await json<{ data: Record<string, string> }>(['get', 'configmap', APISERVER_CONFIGMAP, '-n', 'nodepulse']);
    expect(map.data.host).toBe(node().addresses.hostAddress);
  });
});

describe('the agent DaemonSet on the real node, as shipped in the generic overlay', () => {
  it('rolls out: kubectl rollout status succeeds and the pod is Ready through the kubelet\'s own probes', async () => {
    await rollout('daemonset', 'nodepulse-agent');
    const pod = await agentPod();
    expect(podReady(pod)).toBe(true);
    expect(pod.spec?.containers[0]?.image).toBe(NODE_IMAGE);
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    // As shipped: started privileged as root for /dev/kmsg (the agent drops to uid 1000: below), a
    // read-only root, the RuntimeDefault seccomp profile; the config checked first as uid 1000.
    expect(pod.spec?.securityContext).toMatchObject({ runAsUser: 0, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.spec?.containers[0]?.securityContext).toMatchObject({ privileged: true, readOnlyRootFilesystem: true });
    expect(pod.status?.initContainerStatuses?.map((c) => [c.name, c.state?.terminated?.exitCode])).toEqual([['check-config', 0]]);
    const daemonSet = await json<V1DaemonSet>(['get', 'daemonset/nodepulse-agent', '-n', 'nodepulse']);
    expect(daemonSet.status?.numberReady).toBe(2);
  });

  it('logs its start line (kubectl logs, through the API server and the kubelet)', async () => {
    const pod = await agentPod();
    const logs = await kubectl(['logs', '-n', 'nodepulse', pod.metadata?.name ?? '', '-c', 'agent']);
    expect(logs).toContain('nodepulse agent running');
  });

  it('publishes every nodepulse condition from inside the container, all healthy (kubectl describe node)', async () => {
    for (const type of ownedConditionTypes) await condition(type, 'False', /./);
    const described = await kubectl(['describe', 'node', node().name]);
    for (const type of ownedConditionTypes) expect(described).toMatch(new RegExp(`${type}\\s+False`));
    const conditions = await conditionsOf(node().name);
    const reasonOf = (type: string) => conditions.find((c) => c.type === type)?.reason;
    // The real kubelet's healthz on the node's loopback, the DNS server on the node, the API server's path back to the pod.
    expect(reasonOf(conditionTypeByProbe.kubelet)).toBe('KubeletHealthy');
    expect(reasonOf(conditionTypeByProbe.dns)).toBe('DNSHealthy');
    expect(reasonOf(conditionTypeByProbe.konnectivity)).toBe('KonnectivityPathHealthy');
    expect(conditions.find((c) => c.type === conditionTypeByProbe.konnectivity)?.message).toContain('direct mode');
    expect(reasonOf(conditionTypeByProbe.diskSpace)).toBe('DiskSpaceNormal');
    // The node's real containerd, through the mounted /run/containerd, from uid 1000 with group 0.
    expect(reasonOf(conditionTypeByProbe.runtime)).toBe(probeReasons.runtime.healthy);
    // NPD's kernel monitor conditions and the restart counts, on the node's real kernel log and /proc.
    for (const type of ['KernelDeadlock', 'ReadonlyFilesystem', ...Object.values(restartConditionTypes)]) {
      expect(conditions.find((c) => c.type === type)?.status, type).toBe('False');
    }
  });

  it('runs the agent as uid 1000 with no capability once it has opened /dev/kmsg in its privileged container', async () => {
    // PID 1 of the container is the agent (the DaemonSet's command is node itself).
    const status = await inAgentContainer("process.stdout.write(require('node:fs').readFileSync('/proc/1/status', 'utf8'))");
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^Groups:\s+0\s*$/m);
    expect(status).toMatch(/^CapEff:\s+0000000000000000$/m);
  });

  it("an OOM kill in the node's real kernel log becomes an OOMKilling Event on the node (NPD's rule, read as it ships)", async () => {
    const victim = `np${randomUUID().slice(0, 8)}`;
    writeFileSync('/dev/kmsg', `<3>Out of memory: Killed process 4242 (${victim}) total-vm:9000kB, anon-rss:800kB, file-rss:0kB, shmem-rss:0kB\n`);
    const event = await eventually(
      `an OOMKilling Event naming ${victim} on ${node().name}`,
      async () =>
        (await json<{ items: CoreV1Event[] }>(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node().name},reason=OOMKilling`])).items.find((e) =>
          e.message?.includes(victim),
        ),
      60_000,
      [],
      500,
    );
    expect(event).toMatchObject({ type: 'Warning', source: { component: expect.stringContaining('nodepulse') } });
  });

  it("holds the pod's own projected ServiceAccount token to its node: patching another node's status is refused", async () => {
    const code = [
      "const fs = require('node:fs'); const https = require('node:https');",
      "const dir = '/var/run/secrets/kubernetes.io/serviceaccount';",
      `const req = https.request({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, method: 'PATCH', path: '/api/v1/nodes/${kwokNode}/status',`,
      "  ca: fs.readFileSync(dir + '/ca.crt'), headers: { authorization: 'Bearer ' + fs.readFileSync(dir + '/token', 'utf8'), 'content-type': 'application/strategic-merge-patch+json' } },",
      "  (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => console.log(res.statusCode + ' ' + b)); });",
      "req.end(JSON.stringify({ status: { conditions: [{ type: 'KubeletProblem', status: 'True', reason: 'Forged', message: 'forged from the agent pod' }] } }));",
    ].join('\n');
    const answer = await inAgentContainer(code);
    expect(answer).toMatch(/^403 /);
    expect(answer).toContain(`the nodepulse agent on node ${node().name} may not write the status of node ${kwokNode}`);
  });
});

describe('faults seen from inside the container, through its real hostPath mounts', () => {
  it('CPU pressure in /proc/pressure/cpu (under /host/proc) turns CPUPressureProblem True, and back', async () => {
    writeFileSync(node().cpuPressureFile, 'some avg10=95.00 avg60=80.00 avg300=40.00 total=99999999\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n');
    const high = await condition(conditionTypeByProbe.cpu, 'True', /^CPUPressureHigh$/);
    expect(high.message).toContain('95');
    writeFileSync(node().cpuPressureFile, CALM_CPU_PRESSURE);
    await condition(conditionTypeByProbe.cpu, 'False', /^CPUPressureNormal$/);
  });

  it("a full kubelet filesystem (under /host/root, HostToContainer) turns DiskSpaceProblem True, and back", async () => {
    const kubeletRoot = node().namespaces.path('/var/lib/kubelet');
    const fill = join(kubeletRoot, 'nodepulse-test-fill');
    const { blocks, bfree, bsize } = statfsSync(kubeletRoot);
    const toWrite = Math.max(0, Math.ceil((0.94 * blocks - (blocks - bfree)) * bsize));
    const fd = openSync(fill, 'w');
    try {
      const chunk = Buffer.alloc(MiB, 1);
      for (let written = 0; written < toWrite; written += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, toWrite - written));
    } finally {
      closeSync(fd);
    }
    try {
      const low = await condition(conditionTypeByProbe.diskSpace, 'True', /^DiskSpaceLow$/);
      expect(low.message).toContain('/host/root/var/lib/kubelet');
    } finally {
      rmSync(fill, { force: true });
    }
    await condition(conditionTypeByProbe.diskSpace, 'False', /^DiskSpaceNormal$/);
  });

  it("the node's resolver answering SERVFAIL turns DNSProblem True, and back", async () => {
    await dns.setMode('servfail');
    await condition(conditionTypeByProbe.dns, 'True', /Servfail$/);
    await dns.setMode('answer');
    await condition(conditionTypeByProbe.dns, 'False', /^DNSHealthy$/);
  });

  let seenWhileCut: LocalCondition | undefined;

  it('the konnectivity probe stops passing while the veth is cut, and passes through the API server -> pod path again when it is back', async () => {
    await node().namespaces.setLink(false);
    try {
      seenWhileCut = await eventually(
        'KonnectivityProblem to leave False on the agent endpoint while the veth is down',
        async () => (await localConditions()).find((c) => c.type === conditionTypeByProbe.konnectivity && c.status !== 'False'),
        60_000,
        [],
        1_000,
      );
      console.log(`KonnectivityProblem on the agent endpoint while the veth is down: ${JSON.stringify(seenWhileCut)}`);
    } finally {
      await node().namespaces.setLink(true);
    }
    if (seenWhileCut.status !== 'True') {
      // What the agent logged about it, for whoever reads a failure of the next test.
      const logs = await kubectl(['logs', '-n', 'nodepulse', (await agentPod()).metadata?.name ?? '', '-c', 'agent', '--since=90s']);
      console.log(logs.split('\n').filter((line) => line.includes('konnectivity')).slice(-6).join('\n'));
    }
    await condition(conditionTypeByProbe.konnectivity, 'False', /^KonnectivityPathHealthy$/, 120_000);
  });

  it('reports the cut veth as a KonnectivityProblem (True, with a timeout or unreachable reason), not as a probe error', () => {
    expect(seenWhileCut?.status).toBe('True');
    expect(seenWhileCut?.reason).toMatch(/^(APIServerUnreachable|KonnectivityTimeout|NodeUnreachableFromAPIServer)$/);
  });
});

describe("the agent's memory as the kubelet accounts it", () => {
  it('fits the DaemonSet\'s memory limit by the cgroup (working set from /stats/summary) and by process RSS', async () => {
    const pod = await agentPod();
    const figures = await eventually(
      'the kubelet summary to have the agent container',
      () => containerMemory(cluster.plane, node(), { namespace: 'nodepulse', name: pod.metadata?.name ?? '' }, 'agent', '/app/dist/agent/cli.js'),
      60_000,
      [],
      2_000,
    );
    const limits = pod.spec?.containers[0]?.resources?.limits ?? {};
    const limitMiB = Number.parseInt(String(limits.memory), 10);
    const mib = (bytes: number) => Number((bytes / MiB).toFixed(1));
    console.log(`agent container on the real node: working set ${mib(figures.workingSetBytes)} MiB, cgroup usage ${mib(figures.usageBytes)} MiB, cgroup rss ${mib(figures.rssBytes)} MiB, process RSS ${mib(figures.processRssBytes)} MiB, limit ${limitMiB} MiB`);
    expect(mib(figures.workingSetBytes)).toBeLessThan(limitMiB);
    expect(mib(figures.processRssBytes)).toBeLessThan(limitMiB);
  });
});

describe('the controller Deployment on the real node', () => {
  it('rolls out both replicas on the real node, as its own ServiceAccount, with no way out of its pod but the API server', async () => {
    await rollout('deployment', 'nodepulse-controller');
    const pods = (await json<{ items: V1Pod[] }>(['get', 'pods', '-n', 'nodepulse', '-l', 'app.kubernetes.io/name=nodepulse-controller'])).items;
    expect(pods.filter((p) => podReady(p)).map((p) => p.spec?.nodeName)).toEqual([node().name, node().name]);
    expect(pods.map((p) => p.spec?.serviceAccountName)).toEqual(['nodepulse-controller', 'nodepulse-controller']);
    const name = pods[0]?.metadata?.name ?? '';
    const code = "const s = require('node:net').connect(443, '10.0.0.1'); s.on('error', (e) => console.log(e.code)); s.on('connect', () => console.log('connected'));";
    expect((await kubectl(['exec', '-n', 'nodepulse', name, '--', 'node', '-e', code])).trim()).toBe('ENETUNREACH');
  });

  it('acts on a kwok node going NotReady with the dry-run provider: NodeRebootStart, and nothing is done', async () => {
    // kwok stops keeping the node alive, and the node says NotReady, as a node whose kubelet died would.
    await kubectl(['annotate', 'node', kwokNode, `${KWOK_NODE_ANNOTATION.key}-`]);
    const now = new Date().toISOString();
    await kubectl([
      'patch', 'node', kwokNode, '--subresource=status', '--type=strategic',
      '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'test: kwok stopped', lastHeartbeatTime: now, lastTransitionTime: now }] } }),
    ]);
    const start = await eventually(
      `NodeRebootStart on ${kwokNode}`,
      async () => {
        const events = await json<{ items: CoreV1Event[] }>(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${kwokNode}`]);
        return events.items.find((e) => e.reason === stepEventReason('reboot', 'Start'));
      },
      120_000,
      [],
      1_000,
    );
    expect(start.source?.component ?? start.reportingComponent).toBe('nodepulse-controller');
    const logs = await kubectl(['logs', '-n', 'nodepulse', '-l', 'app.kubernetes.io/name=nodepulse-controller', '--tail=-1']);
    expect(logs).toMatch(/dry.?run/i);
  });
});

describe('upgrades and the agent-reboot overlay on the real node', () => {
  it('rolls the DaemonSet to a new image tag and a config change; the conditions survive the restart without a transition', async () => {
    const before = await conditionsOf(node().name);
    const oldPod = (await agentPod()).metadata?.name;
    await node().importImage(cluster.imageArchive, ['localhost/nodepulse:test-2']);
    const dir = mkdtempSync(join(work, 'operator-overlay-'));
    const config = parse(readFileSync(join(repoRoot(), 'manifests', 'base', 'agent-config.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    config.publish = { ...config.publish, heartbeatSeconds: 120 };
    writeFileSync(join(dir, 'agent.yaml'), stringify(config));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      stringify({
        resources: [relative(dir, join(manifestsDir, 'real-node'))],
        configMapGenerator: [{ name: 'nodepulse-agent-config', namespace: 'nodepulse', behavior: 'replace', files: ['agent.yaml'] }],
        images: [{ name: 'localhost/nodepulse', newTag: 'test-2' }],
      }),
    );
    await kubectl(['apply', '-k', dir]);
    await rollout('daemonset', 'nodepulse-agent');
    const pod = await agentPod();
    expect(pod.metadata?.name).not.toBe(oldPod);
    expect(pod.spec?.containers[0]?.image).toBe('localhost/nodepulse:test-2');
    expect(podReady(pod)).toBe(true);
    // The new agent has published (a heartbeat or more) and changed no condition: it adopted them.
    await eventually(
      'the new agent to re-state its conditions',
      async () => {
        const after = await conditionsOf(node().name);
        const restated = ownedConditionTypes.every((type) => {
          const old = before.find((c) => c.type === type);
          const now = after.find((c) => c.type === type);
          return now && old && new Date(now.lastHeartbeatTime ?? 0) > new Date(old.lastHeartbeatTime ?? 0);
        });
        return restated ? after : undefined;
      },
      120_000,
      [],
      2_000,
    );
    const after = await conditionsOf(node().name);
    for (const type of ownedConditionTypes) {
      const old = before.find((c) => c.type === type);
      const now = after.find((c) => c.type === type);
      expect({ type, status: now?.status, transition: now?.lastTransitionTime }).toEqual({ type, status: old?.status, transition: old?.lastTransitionTime });
    }
  });

  it('switches to the agent-reboot overlay: the privileged host-PID pod runs the reboot command on request (a marker, never a reboot)', async () => {
    const marker = node().namespaces.path('/run/nodepulse-reboot-requested');
    expect(existsSync(marker)).toBe(false);
    await kubectl(['apply', '-k', join(manifestsDir, 'real-node-reboot')]);
    await rollout('daemonset', 'nodepulse-agent');
    const pod = await agentPod();
    expect(pod.spec?.hostPID).toBe(true);
    expect(pod.spec?.containers[0]?.securityContext?.privileged).toBe(true);
    const bootID = (await json<V1Node>(['get', 'node', node().name])).status?.nodeInfo?.bootID ?? '';
    expect(bootID).not.toBe('');
    await kubectl(['annotate', 'node', node().name, `nodepulse.io/reboot-request=${bootID}`, '--overwrite']);
    await eventually('the reboot command to run', async () => (existsSync(marker) ? true : undefined), 60_000, [], 500);
    expect(readFileSync(marker, 'utf8').trim().split('\n')).toHaveLength(1);
    await eventually(
      'RebootingOnRequest on the real node',
      async () => {
        const events = await json<{ items: CoreV1Event[] }>(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node().name},reason=RebootingOnRequest`]);
        return events.items[0];
      },
      30_000,
    );
  });
});

describe('teardown', () => {
  it('leaves nothing behind: no process of the node, no link, no cgroup, no mount, no folder', async () => {
    const { namespaces, cgroups, dir } = node();
    dns.stop();
    await cluster.stop();
    expect(namespaces.processes()).toEqual([]);
    expect(await namespaces.hostLinkExists()).toBe(false);
    expect(cgroups.remaining()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  });
});
