import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1NodeCondition } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { components, konnectivityDeployment, probeReasons } from '../../common/contract.js';
import { nodeEvent } from '../../common/kube/nodeEvent.js';
import { serializeRemediationState, startStep } from '../../controller/remediationState.js';
import { requiredAccess } from '../../tools/doctor/access.js';
import { reportApiVersion, stepIds, verdicts } from '../../tools/doctor/report.js';
import { resolveBinaries } from '../cluster/binaries.js';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import { TestDnsServer } from '../support/dnsServer.js';
import { createNodes, fleetNode } from '../../bench/support/nodeFleet.js';
import { onlyProbes } from '../support/onlyProbes.js';

/**
 * `nodepulse doctor` against the real API server, as a ServiceAccount with exactly the rights
 * it documents: a pool of nodes where a real running agent publishes a DNS problem and the
 * others carry what agents, the kubelet and both remediators would leave; the
 * konnectivity-agent Deployment at 0/2 and 2/2; the output asserted field by field and its
 * JSON against a strict schema.
 */
const cluster = testCluster();
const admin = cluster.adminKubeConfig();
const core = admin.makeApiClient(CoreV1Api);
const apps = admin.makeApiClient(AppsV1Api);
const repo = join(import.meta.dirname, '../..');
const cli = join(repo, 'dist/tools/nodepulse.js');
const work = mkdtempSync(join(tmpdir(), 'nodepulse-e2e-doctor-'));
const label = 'nodepulse.io/doctor-test';
const pool = `d${randomBytes(3).toString('hex')}`;
const selector = `${label}=${pool}`;
const name = (i: number) => `doc-${pool}-000${i}`;
const { namespace: tunnelNamespace, name: tunnelName } = konnectivityDeployment;

let dns: TestDnsServer;
let agent: AgentProcess | undefined;
let doctorKubeconfig: string;
let partialKubeconfig: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built CLI as an operator runs it, with only the kubeconfig it is given. */
function doctor(args: string[], kubeconfig = doctorKubeconfig, command: string[] = [cli, 'doctor'], executable = process.execPath, path = process.env.PATH ?? ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, [...command, ...args], { env: { PATH: path, HOME: work, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const iso = (msAgo: number) => new Date(Date.now() - msAgo) as unknown as Date;

function condition(type: string, status: string, reason: string, message: string, sinceMs = 600_000): V1NodeCondition {
  return { type, status, reason, message, lastHeartbeatTime: iso(5_000), lastTransitionTime: iso(sinceMs) };
}

async function patchStatus(node: string, conditions: V1NodeCondition[]): Promise<void> {
  await core.patchNodeStatus({ name: node, body: { status: { conditions } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
}

const kubeletReady = (status: 'True' | 'False', message: string) => [
  condition('Ready', status, status === 'True' ? 'KubeletReady' : 'KubeletNotReady', message, status === 'True' ? 3_600_000 : 540_000),
  condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
  condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
  condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
];

/** What an agent with every probe on publishes on a healthy node. */
const healthyAgent = () => [
  condition('CPUPressureProblem', 'False', probeReasons.cpu.normal, 'cpu some avg10=1.00% (threshold 75%)'),
  condition('MemoryPressureProblem', 'False', probeReasons.memory.normal, 'MemAvailable 9000 MiB'),
  condition('PIDPressureProblem', 'False', probeReasons.pid.normal, '300 of 4194304 pids'),
  condition('DiskIOProblem', 'False', probeReasons.diskIO.normal, 'io some avg10=0.10%'),
  condition('DiskSpaceProblem', 'False', probeReasons.diskSpace.normal, '/ 40% used'),
  condition('DNSProblem', 'False', probeReasons.dns.healthy, '2 DNS check(s) answered'),
  condition('KubeletProblem', 'False', probeReasons.kubelet.healthy, 'http://127.0.0.1:10248/healthz answered ok in 2 ms'),
  condition('KonnectivityProblem', 'False', probeReasons.konnectivity.healthy, 'answered in 12ms'),
];

async function createNode(node: string): Promise<void> {
  await core.createNode({ body: { metadata: { name: node, labels: { [label]: pool, 'kubernetes.io/os': 'linux' } } } });
}

async function emit(node: string, component: string, reason: string, message: string, agoMs: number): Promise<void> {
  const body = nodeEvent({ node: { name: node }, type: 'Normal', reason, message, component, host: component, now: new Date(Date.now() - agoMs) });
  await core.createNamespacedEvent({ namespace: 'default', body });
}

/** A ServiceAccount bound to the doctor's documented rights, less `without` (a resource). */
async function doctorIdentity(account: string, without?: string): Promise<string> {
  const rules = requiredAccess.filter((a) => a.resource !== without);
  const ruleOf = (a: (typeof rules)[number]) => {
    const [resource, group = ''] = a.resource.split('.');
    return { apiGroups: [group], resources: [resource], verbs: a.verbs.split(', ') };
  };
  const docs: object[] = [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, namespace: 'nodepulse' } }];
  for (const a of rules) {
    const bindingName = `${account}-${a.resource.replace('.', '-')}`;
    const subjects = [{ kind: 'ServiceAccount', name: account, namespace: 'nodepulse' }];
    if (a.namespace === null) {
      docs.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: bindingName }, rules: [ruleOf(a)] });
      docs.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: bindingName }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: bindingName }, subjects });
    } else {
      docs.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: bindingName, namespace: a.namespace }, rules: [ruleOf(a)] });
      docs.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: bindingName, namespace: a.namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: bindingName }, subjects });
    }
  }
  await cluster.kubectl(['apply', '-f', '-'], { input: docs.map((d) => stringify(d)).join('---\n') });
  return cluster.serviceAccountKubeconfig('nodepulse', account);
}

async function setTunnel(ready: number): Promise<void> {
  await apps.patchNamespacedDeploymentStatus(
    { name: tunnelName, namespace: tunnelNamespace, body: { status: { replicas: 2, readyReplicas: ready, availableReplicas: ready, updatedReplicas: 2 } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  for (const [i, restarts] of [4, 0].entries()) {
    await core.patchNamespacedPodStatus(
      {
        name: `${tunnelName}-${pool}-${i}`,
        namespace: tunnelNamespace,
        body: {
          status: {
            conditions: [{ type: 'Ready', status: ready > i ? 'True' : 'False' }],
            containerStatuses: [
              {
                name: 'agent',
                image: 'konnectivity-agent:test',
                imageID: '',
                ready: ready > i,
                restartCount: restarts,
                ...(restarts > 0 ? { lastState: { terminated: { reason: 'Error', exitCode: 1 } } } : {}),
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }
}

async function createTunnel(): Promise<void> {
  await apps.deleteNamespacedDeployment({ name: tunnelName, namespace: tunnelNamespace }).catch(() => undefined);
  await eventually('an earlier konnectivity-agent Deployment to go', async () => (await apps.readNamespacedDeployment({ name: tunnelName, namespace: tunnelNamespace }).then(() => undefined, () => true)), 20_000);
  const labels = { app: tunnelName };
  await apps.createNamespacedDeployment({
    namespace: tunnelNamespace,
    body: {
      metadata: { name: tunnelName },
      spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'agent', image: 'konnectivity-agent:test' }] } } },
    },
  });
  for (const i of [0, 1]) {
    await core.createNamespacedPod({
      namespace: tunnelNamespace,
      body: { metadata: { name: `${tunnelName}-${pool}-${i}`, labels }, spec: { nodeName: name(i + 1), containers: [{ name: 'agent', image: 'konnectivity-agent:test' }] } },
    });
  }
}

beforeAll(async () => {
  await cluster.kubectl(['apply', '-f', join(repo, 'manifests/base/namespace.yaml'), '-f', join(repo, 'manifests/base/agent-rbac.yaml')]);
  const agentKubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  doctorKubeconfig = await doctorIdentity('doctor-e2e');
  partialKubeconfig = await doctorIdentity('doctor-e2e-partial', 'events');
  dns = await TestDnsServer.start({ records: { A: ['10.0.0.1'] } });
  dns.setMode('servfail');
  for (const i of [1, 2, 3, 4, 5, 6]) await createNode(name(i));
  for (const i of [1, 2, 3, 5, 6]) await patchStatus(name(i), kubeletReady('True', 'kubelet is posting ready status'));
  await patchStatus(name(4), kubeletReady('False', 'container runtime is down'));
  // 0001: a real agent, its cluster DNS answering SERVFAIL.
  const procRoot = join(work, 'proc');
  mkdirSync(join(procRoot, 'pressure'), { recursive: true });
  writeFileSync(join(procRoot, 'pressure/cpu'), 'some avg10=1.00 avg60=1.00 avg300=1.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n');
  agent = AgentProcess.start(work, name(1), {
    nodeName: name(1),
    kubeconfig: agentKubeconfig,
    procRoot,
    sysRoot: join(work, 'no-sys'),
    server: { address: '127.0.0.1', port: await freeLoopbackPort() },
    publish: { enabled: true, heartbeatSeconds: 300 },
    probes: onlyProbes({
      cpu: { intervalSeconds: 1, failureThreshold: 2, recoveryThreshold: 2 },
      dns: { intervalSeconds: 1, failureThreshold: 2, recoveryThreshold: 2, timeoutMs: 300, checks: [{ name: 'ClusterDNS', server: dns.address, query: 'kubernetes.default.svc.cluster.local', type: 'A' }] },
    }),
  });
  // 0002 healthy, 0003 its disk at the cap, 0004 NotReady on our ladder, 0005 repaired by AKS, 0006 no agent.
  await patchStatus(name(2), healthyAgent());
  await patchStatus(name(3), [
    ...healthyAgent().filter((c) => c.type !== 'DiskIOProblem'),
    condition('DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'io some avg10=62.40% on sda 499 IOPS (cap 500, P10)', 840_000),
  ]);
  await patchStatus(name(4), healthyAgent());
  await patchStatus(name(5), healthyAgent());
  await core.patchNode(
    { name: name(4), body: { metadata: { annotations: { 'nodepulse.io/remediation-state': serializeRemediationState(startStep(undefined, 'reboot', 1, Date.now() - 120_000)) } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await emit(name(4), components.controller, 'NodeRebootStart', 'reboot started: Ready=False persisted 9m (attempt 1 of 3)', 120_000);
  await emit(name(5), components.aksAutoRepair, 'NodeRebootStart', 'Node auto-repair is rebooting the node', 60_000);
  await createTunnel();
  await setTunnel(0);
  await eventually(
    'the real agent to publish DNSProblem True',
    async () => ((await core.readNode({ name: name(1) })).status?.conditions?.find((c) => c.type === 'DNSProblem')?.status === 'True' ? true : undefined),
    30_000,
    agent,
  );
});

afterAll(async () => {
  await agent?.stop();
  await dns?.stop();
  await apps.deleteNamespacedDeployment({ name: tunnelName, namespace: tunnelNamespace }).catch(() => undefined);
  for (const i of [0, 1]) await core.deleteNamespacedPod({ name: `${tunnelName}-${pool}-${i}`, namespace: tunnelNamespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  await core.deleteCollectionNode({ labelSelector: `${label}` }).catch(() => undefined);
});

/** The -o json report, strictly: a field added, removed or renamed fails here. */
const verdict = z.enum(verdicts);
const when = z.string().datetime().nullable();
const evidence = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('condition'), type: z.string(), status: z.string(), reason: z.string().nullable(), message: z.string().nullable(), since: when, heartbeat: when }),
  z.strictObject({ kind: z.literal('deployment'), namespace: z.string(), name: z.string(), ready: z.number(), desired: z.number(), available: z.number(), updated: z.number() }),
  z.strictObject({ kind: z.literal('pod'), namespace: z.string(), name: z.string(), node: z.string().nullable(), ready: z.boolean(), restarts: z.number(), lastTermination: z.string().nullable() }),
  z.strictObject({ kind: z.literal('event'), source: z.string(), type: z.string(), reason: z.string(), message: z.string(), count: z.number(), at: when }),
  z.strictObject({ kind: z.literal('remediation'), step: z.string(), phase: z.string(), attempt: z.number(), stepStartedAt: when, stepEndedAt: when, detail: z.string().nullable() }),
  z.strictObject({ kind: z.literal('taint'), key: z.string(), effect: z.string() }),
]);
const finding = z.strictObject({ node: z.string().nullable(), verdict, summary: z.string(), evidence: z.array(evidence), next: z.array(z.string()) });
const reportSchema = z.strictObject({
  apiVersion: z.literal(reportApiVersion),
  at: z.string().datetime(),
  cluster: z.strictObject({ server: z.string(), context: z.string().nullable() }),
  selector: z.string().nullable(),
  nodes: z.number(),
  nodepulseNodes: z.number(),
  steps: z.array(
    z.strictObject({
      number: z.number(),
      id: z.enum(stepIds),
      title: z.string(),
      verdict,
      nodes: z.strictObject({ problem: z.number(), warning: z.number(), unknown: z.number(), ok: z.number(), notMeasured: z.number() }),
      summary: z.string(),
      findings: z.array(finding),
      withNodepulse: z.string().nullable(),
    }),
  ),
  exitCode: z.union([z.literal(0), z.literal(1)]),
});
type Report = z.infer<typeof reportSchema>;

async function jsonReport(args: string[] = []): Promise<{ run: Run; report: Report }> {
  const run = await doctor(['-l', selector, '-o', 'json', ...args]);
  const parsed = reportSchema.safeParse(JSON.parse(run.stdout || 'null'));
  if (!parsed.success) throw new Error(`report does not match the schema: ${parsed.error.message}\n${run.stdout.slice(0, 2000)}\n${run.stderr}`);
  return { run, report: parsed.data };
}

const stepOf = (report: Report, id: (typeof stepIds)[number]) => report.steps.find((s) => s.id === id) as Report['steps'][number];
const findingOf = (report: Report, id: (typeof stepIds)[number], node: string | null) => stepOf(report, id).findings.find((f) => f.node === node);

describe('nodepulse doctor on the real API server, with only its documented rights', () => {
  it('-o json: every step, verdict and finding field by field, exit 1', async () => {
    const { run, report } = await jsonReport();
    expect(run.code).toBe(1);
    expect(report).toMatchObject({ apiVersion: 'nodepulse.io/doctor/v1', selector, nodes: 6, nodepulseNodes: 5, exitCode: 1, cluster: { server: cluster.server } });
    expect(report.steps.map((s) => [s.number, s.id, s.verdict])).toEqual([
      [1, 'nodes', 'problem'],
      [2, 'tunnel', 'problem'],
      [3, 'dns', 'problem'],
      [4, 'kubelet', 'problem'],
      [5, 'problemDetector', 'warning'],
      [6, 'diskIO', 'problem'],
    ]);

    // Step 1: the NotReady node, with where it stands on our ladder; the one AKS is repairing.
    const notReady = findingOf(report, 'nodes', name(4));
    expect(notReady?.verdict).toBe('problem');
    expect(notReady?.summary).toMatch(/^NotReady \(KubeletNotReady\) for \d+m\d*s?: container runtime is down; nodepulse auto-repair: reboot started \d+m\d*s? ago, attempt 1$/);
    expect(notReady?.evidence).toContainEqual(expect.objectContaining({ kind: 'condition', type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' }));
    expect(notReady?.evidence).toContainEqual(expect.objectContaining({ kind: 'remediation', step: 'reboot', phase: 'started', attempt: 1, detail: null }));
    expect(notReady?.evidence).toContainEqual(expect.objectContaining({ kind: 'event', source: components.controller, reason: 'NodeRebootStart', type: 'Normal' }));
    expect(notReady?.next[0]).toBe(`kubectl describe node ${name(4)}; the kubelet (step 4) and the tunnel (step 2) tell why; AKS auto-repair reboots a node NotReady for 5+ minutes`);
    const aks = findingOf(report, 'nodes', name(5));
    expect(aks?.verdict).toBe('warning');
    expect(aks?.summary).toMatch(/^aks-auto-repair NodeRebootStart \d+m\d*s? ago: Node auto-repair is rebooting the node$/);

    // Step 2: the Deployment at 0/2 with its pods' restarts, and the guide's first fix.
    const tunnel = findingOf(report, 'tunnel', null);
    expect(tunnel).toMatchObject({ verdict: 'problem', summary: 'konnectivity-agent 0/2 ready, pods restarted 4 time(s) (last: Error (exit 1))' });
    expect(tunnel?.evidence[0]).toEqual({ kind: 'deployment', namespace: 'kube-system', name: 'konnectivity-agent', ready: 0, desired: 2, available: 0, updated: 2 });
    expect(tunnel?.evidence.slice(1)).toEqual([
      { kind: 'pod', namespace: 'kube-system', name: `konnectivity-agent-${pool}-0`, node: name(1), ready: false, restarts: 4, lastTermination: 'Error (exit 1)' },
      { kind: 'pod', namespace: 'kube-system', name: `konnectivity-agent-${pool}-1`, node: name(2), ready: false, restarts: 0, lastTermination: null },
    ]);
    expect(tunnel?.next[0]).toContain('then kubectl rollout restart deploy konnectivity-agent -n kube-system');

    // Step 3: the real agent's DNSProblem, read the guide's way.
    const dnsFinding = findingOf(report, 'dns', name(1));
    expect(dnsFinding?.verdict).toBe('problem');
    expect(dnsFinding?.summary).toMatch(/^DNSProblem ClusterDNSServfail for \d+s: ClusterDNS \(kubernetes\.default\.svc\.cluster\.local A via 127\.0\.0\.1:\d+\): servfail/);
    expect(dnsFinding?.next).toEqual(['ClusterDNS fails while Upstream passes: suspect CoreDNS — kubectl -n kube-system logs -l k8s-app=kube-dns']);
    expect(dnsFinding?.evidence[0]).toMatchObject({ kind: 'condition', type: 'DNSProblem', status: 'True', reason: 'ClusterDNSServfail' });
    expect(stepOf(report, 'dns').nodes).toEqual({ problem: 1, warning: 0, unknown: 0, ok: 4, notMeasured: 1 });

    // Step 4: the kubelet's side of the NotReady node.
    expect(findingOf(report, 'kubelet', name(4))).toMatchObject({ verdict: 'problem', summary: 'kubelet reports NotReady: container runtime is down' });

    // Step 5: the node without an agent.
    expect(findingOf(report, 'problemDetector', name(6))).toMatchObject({ verdict: 'warning', summary: 'no nodepulse conditions, though 5 other node(s) have them: the agent does not run here' });

    // Step 6: the throttled disk.
    expect(stepOf(report, 'diskIO').summary).toMatch(new RegExp(`^6 nodes, 1 problem: ${name(3)} DiskIOProblem IOThrottled for 1[45]m\\d*s?: io some avg10=62\\.40% on sda 499 IOPS \\(cap 500, P10\\)$`));
    expect(stepOf(report, 'diskIO').withNodepulse).toBeNull();
  });

  it('text: one summary line per step first, exit 1; --node gives that node every step with evidence', async () => {
    const run = await doctor(['-l', selector]);
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^nodepulse doctor at \\S+: 6 node\\(s\\) matching ${selector} \\(nodepulse on 5 of 6\\), context \\S+, ${cluster.server.replace(/[.]/g, '\\.')}$`));
    expect(lines.slice(2, 8).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['1. problem', '2. problem', '3. problem', '4. problem', '5. warning', '6. problem']);
    expect(lines[7]).toMatch(new RegExp(`Disk IOPS and throughput throttling: 6 nodes, 1 problem: ${name(3)} DiskIOProblem IOThrottled for 1[45]m`));
    expect(run.stdout).not.toContain('next:');

    const one = await doctor(['--node', name(3)]);
    expect(one.code).toBe(1);
    expect(one.stdout).toContain(`== 6. Disk IOPS and throughput throttling: problem`);
    expect(one.stdout).toMatch(new RegExp(`   PROBLEM ${name(3)}: DiskIOProblem IOThrottled for 1[45]m`));
    expect(one.stdout).toMatch(/ {6}condition DiskIOProblem=True IOThrottled since \S+: io some avg10=62\.40% on sda 499 IOPS \(cap 500, P10\)/);
    expect(one.stdout).toMatch(/ {6}next: a disk is at its provisioned IOPS or MB\/s cap/);
    expect(one.stdout).toContain(`   OK ${name(3)}: Ready`);
  });

  it('konnectivity-agent 2/2 ready turns step 2 ok', async () => {
    await setTunnel(2);
    try {
      const { report } = await jsonReport();
      expect(stepOf(report, 'tunnel').verdict).toBe('warning');
      expect(findingOf(report, 'tunnel', null)).toMatchObject({ verdict: 'warning', summary: 'konnectivity-agent 2/2 ready, pods restarted 4 time(s) (last: Error (exit 1))' });
      await core.patchNamespacedPodStatus(
        { name: `${tunnelName}-${pool}-0`, namespace: tunnelNamespace, body: { status: { containerStatuses: [{ name: 'agent', image: 'konnectivity-agent:test', imageID: '', ready: true, restartCount: 0 }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
      const after = await jsonReport();
      expect(findingOf(after.report, 'tunnel', null)).toMatchObject({ verdict: 'ok', summary: 'konnectivity-agent 2/2 ready' });
      expect(stepOf(after.report, 'tunnel').verdict).toBe('ok');
    } finally {
      await setTunnel(0);
    }
  });

  it('without a right it needs: exit 2, naming the missing RBAC verb and resource', async () => {
    const run = await doctor(['-l', selector], partialKubeconfig);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('nodepulse doctor: access denied:');
    expect(run.stderr).toContain('missing RBAC verb "list" on events in namespace default');
    expect(run.stderr).toContain('system:serviceaccount:nodepulse:doctor-e2e-partial');
    expect(run.stderr).toContain('kubectl create clusterrole nodepulse-doctor --verb=get,list --resource=nodes,events,pods,deployments.apps');
  });

  it('usage errors exit 2 and name the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['-o', 'yaml'], /--output: "yaml" is not a format; use text or json/],
      [['--since', '5'], /--since: "5" is not a duration/],
      [['--node', 'no-such-node'], /--node: there is no node "no-such-node"/],
      [['--context', 'nope'], /--context: there is no context "nope" in the kubeconfig/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const run = await doctor(args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(message);
    }
  });

  it('without nodepulse: steps 1, 2 and 4 from what Kubernetes reports, the rest say what nodepulse would add; exit 0 on a healthy pool', async () => {
    const plainPool = `${pool}-plain`;
    for (const i of [1, 2]) {
      await core.createNode({ body: { metadata: { name: `plain-${pool}-${i}`, labels: { [label]: plainPool } } } });
      await patchStatus(`plain-${pool}-${i}`, kubeletReady('True', 'kubelet is posting ready status'));
    }
    await setTunnel(2);
    try {
      const run = await doctor(['-l', `${label}=${plainPool}`, '-o', 'json']);
      const report = reportSchema.parse(JSON.parse(run.stdout));
      expect(report.nodepulseNodes).toBe(0);
      expect(report.steps.map((s) => s.verdict)).toEqual(['ok', 'warning', 'unknown', 'ok', 'unknown', 'unknown']);
      expect(report.steps.map((s) => s.withNodepulse !== null)).toEqual([true, true, true, true, true, true]);
      expect(stepOf(report, 'nodes').summary).toBe('2 nodes: 2 Ready, no pressure');
      expect(run.code).toBe(0);
    } finally {
      await setTunnel(0);
    }
  });

  it('is a kubectl plugin: kubectl finds kubectl-nodepulse on the PATH and runs it as `kubectl nodepulse doctor`', async () => {
    const { kubectl } = await resolveBinaries(['kubectl']);
    const bin = join(work, 'bin');
    mkdirSync(bin, { recursive: true });
    // As npm installs the bin: a symlink to the built file, executable, run by the node on the PATH.
    chmodSync(cli, 0o755);
    symlinkSync(cli, join(bin, 'kubectl-nodepulse'));
    const path = [bin, dirname(process.execPath), process.env.PATH ?? ''].join(':');
    const listed = await doctor([], doctorKubeconfig, ['plugin', 'list'], kubectl, path);
    expect(listed.stdout).toContain(join(bin, 'kubectl-nodepulse'));
    const help = await doctor(['--help'], doctorKubeconfig, ['nodepulse', 'doctor'], kubectl, path);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: kubectl nodepulse doctor \[flags\]/);
    expect(help.stdout).toMatch(/1\. Nodes Ready[\s\S]*2\. Control plane -> node tunnel[\s\S]*3\. DNS[\s\S]*4\. Kubelet[\s\S]*5\. What the node problem detector reports[\s\S]*6\. Disk IOPS/);
    const diagnosed = await doctor(['-l', selector], doctorKubeconfig, ['nodepulse', 'doctor'], kubectl, path);
    expect(diagnosed.code).toBe(1);
    expect(diagnosed.stdout).toContain('Evidence and next steps: kubectl nodepulse doctor --verbose, or --node NAME for one node.');
  });

  it('lists a large pool in pages: 1,200 nodes in 3 node pages of 500, every node counted', async () => {
    const bigPool = `${pool}-big`;
    const nodes = Array.from({ length: 1200 }, (_, i) => {
      const n = fleetNode(`big-${pool}-${String(i).padStart(4, '0')}`, Date.now());
      n.metadata = { ...n.metadata, labels: { ...n.metadata?.labels, [label]: bigPool } };
      return n;
    });
    await createNodes(core, nodes);
    const lists = async () => {
      const text = await cluster.kubectl(['get', '--raw', '/metrics']);
      return text
        .split('\n')
        .filter((l) => l.startsWith('apiserver_request_total{') && l.includes('resource="nodes"') && l.includes('verb="LIST"') && l.includes('scope="cluster"'))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    };
    const before = await lists();
    const run = await doctor(['-l', `${label}=${bigPool}`, '-o', 'json']);
    const pages = (await lists()) - before;
    const report = reportSchema.parse(JSON.parse(run.stdout));
    expect(report.nodes).toBe(1200);
    expect(stepOf(report, 'nodes').nodes.ok).toBe(1200);
    expect(pages).toBe(3);
  });
});
