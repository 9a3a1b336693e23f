import { describe, expect, it } from 'vitest';
import { components, foreignTaints, keys, probeReasons } from '../../common/contract.js';
import { serializeRemediationState, startStep } from '../../controller/remediationState.js';
import type { ClusterFacts, ConditionView, EventView, NodeView } from '../../tools/doctor/clusterFacts.js';
import { diagnose } from '../../tools/doctor/diagnose.js';
import { dnsAdvice, failingChecks } from '../../tools/doctor/steps/dnsStep.js';
import { renderText } from '../../tools/doctor/renderText.js';
import type { DoctorReport, StepId } from '../../tools/doctor/report.js';

/** The doctor's six steps on facts built here, on a fixed clock: every verdict without a cluster. */
const now = Date.parse('2026-12-01T12:00:00Z');
const minutes = (n: number) => n * 60_000;

function cond(type: string, status: string, reason: string, message = '', sinceMinutes = 30, heartbeatMinutes = 1): ConditionView {
  return { type, status, reason, message, since: now - minutes(sinceMinutes), heartbeat: now - minutes(heartbeatMinutes) };
}

/** What a healthy node running the agent carries. */
function healthyConditions(): ConditionView[] {
  return [
    cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
    cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
    cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
    cond('PIDPressure', 'False', 'KubeletHasSufficientPID'),
    cond('CPUPressureProblem', 'False', probeReasons.cpu.normal),
    cond('MemoryPressureProblem', 'False', probeReasons.memory.normal),
    cond('PIDPressureProblem', 'False', probeReasons.pid.normal),
    cond('DiskIOProblem', 'False', probeReasons.diskIO.normal),
    cond('DiskSpaceProblem', 'False', probeReasons.diskSpace.normal),
    cond('DNSProblem', 'False', probeReasons.dns.healthy),
    cond('KubeletProblem', 'False', probeReasons.kubelet.healthy),
    cond('KonnectivityProblem', 'False', probeReasons.konnectivity.healthy),
  ];
}

function node(name: string, change: (conditions: ConditionView[]) => ConditionView[] = (c) => c, extra: Partial<NodeView> = {}): NodeView {
  return { name, conditions: change(healthyConditions()), taints: [], needsHuman: false, ...extra };
}

function replace(type: string, by: ConditionView | undefined) {
  return (conditions: ConditionView[]) => conditions.flatMap((c) => (c.type === type ? (by ? [by] : []) : [c]));
}

function fleet(nodes: NodeView[], more: Partial<ClusterFacts> = {}): ClusterFacts {
  return {
    nodes,
    events: [],
    konnectivity: { deployment: { namespace: 'kube-system', name: 'konnectivity-agent', desired: 2, ready: 2, available: 2, updated: 2 }, pods: [] },
    ...more,
  };
}

function run(facts: ClusterFacts, focus?: string): DoctorReport {
  return diagnose(facts, {
    now,
    agentHeartbeatSeconds: 300,
    eventWindowMs: minutes(60),
    cluster: { server: 'https://127.0.0.1:6443', context: 'test' },
    ...(focus ? { node: focus } : {}),
  });
}

const step = (report: DoctorReport, id: StepId) => {
  const found = report.steps.find((s) => s.id === id);
  if (!found) throw new Error(`no step ${id}`);
  return found;
};

const names = (n: number) => Array.from({ length: n }, (_, i) => `aks-np-000${i + 1}`);

describe('nodepulse doctor: the six steps over a fleet', () => {
  it('names the one throttled disk in the summary of step 6 and exits 1', () => {
    const throttled = cond('DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'io some avg10=61.20% on sda at 498 IOPS of its 500 IOPS cap', 14);
    const nodes = names(6).map((n) => (n === 'aks-np-0003' ? node(n, replace('DiskIOProblem', throttled)) : node(n)));
    const report = run(fleet(nodes));
    const disk = step(report, 'diskIO');
    expect(disk.verdict).toBe('problem');
    expect(disk.summary).toBe('6 nodes, 1 problem: aks-np-0003 DiskIOProblem IOThrottled for 14m: io some avg10=61.20% on sda at 498 IOPS of its 500 IOPS cap');
    expect(disk.nodes).toEqual({ problem: 1, warning: 0, unknown: 0, ok: 5, notMeasured: 0 });
    expect(disk.findings[0]?.next[0]).toMatch(/provisioned IOPS or MB\/s cap/);
    expect(report.exitCode).toBe(1);
    for (const id of ['nodes', 'tunnel', 'dns', 'kubelet', 'problemDetector'] as const) expect(step(report, id).verdict).toBe('ok');
  });

  it('a healthy fleet is ok in every step, exit 0, and says what each step saw', () => {
    const report = run(fleet(names(3).map((n) => node(n))));
    expect(report.steps.map((s) => s.verdict)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(report.exitCode).toBe(0);
    expect(step(report, 'nodes').summary).toBe('3 nodes: 3 Ready, no pressure');
    expect(step(report, 'tunnel').summary).toBe('3 nodes: API server reaches 3; konnectivity-agent 2/2 ready');
    expect(report.steps.every((s) => s.withNodepulse === null)).toBe(true);
  });

  it('without nodepulse, steps 1, 2 and 4 run from what Kubernetes reports and the others say what nodepulse would add', () => {
    const kubeletOnly = (c: ConditionView[]) => c.filter((x) => !x.type.endsWith('Problem'));
    const report = run(fleet([node('a', kubeletOnly), node('b', (c) => kubeletOnly(replace('Ready', cond('Ready', 'False', 'KubeletNotReady', 'container runtime is down', 7))(c)))]));
    expect(report.nodepulseNodes).toBe(0);
    expect(step(report, 'nodes')).toMatchObject({ verdict: 'problem', summary: '2 nodes, 1 problem: b NotReady (KubeletNotReady) for 7m: container runtime is down' });
    expect(step(report, 'tunnel').verdict).toBe('ok');
    expect(step(report, 'kubelet')).toMatchObject({ verdict: 'problem', summary: '2 nodes, 1 problem: b kubelet reports NotReady: container runtime is down' });
    for (const id of ['dns', 'problemDetector', 'diskIO'] as const) {
      expect(step(report, id).verdict).toBe('unknown');
      expect(step(report, id).withNodepulse).toMatch(/nodepulse/);
    }
    expect(step(report, 'dns').withNodepulse).toContain('168.63.129.16');
    expect(step(report, 'tunnel').withNodepulse).toMatch(/request the API server has to carry/);
  });

  it('konnectivity-agent at 0/2 is a problem with the guide\'s next action; absent is direct mode', () => {
    const nodes = [node('a'), node('b')];
    const down = run(
      fleet(nodes, {
        konnectivity: {
          deployment: { namespace: 'kube-system', name: 'konnectivity-agent', desired: 2, ready: 0, available: 0, updated: 2 },
          pods: [{ namespace: 'kube-system', name: 'konnectivity-agent-x', node: 'a', ready: false, restarts: 7, lastTermination: 'Error (exit 1)' }],
        },
      }),
    );
    const tunnel = step(down, 'tunnel');
    expect(tunnel.verdict).toBe('problem');
    expect(tunnel.summary).toBe('2 nodes, 1 problem: konnectivity-agent 0/2 ready, pods restarted 7 time(s) (last: Error (exit 1))');
    expect(tunnel.findings[0]?.next[0]).toBe(
      'check egress rules: the nodes must reach the API server on 443 (routes through an NVA or Azure Firewall), then kubectl rollout restart deploy konnectivity-agent -n kube-system',
    );
    expect(down.exitCode).toBe(1);
    const direct = step(run(fleet(nodes, { konnectivity: { pods: [] } })), 'tunnel');
    expect(direct.verdict).toBe('ok');
    expect(direct.summary).toContain('direct mode');
  });

  it('a condition the agent stopped re-stating is unknown, not a problem (its agent is gone)', () => {
    const stale = cond('DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'sda at cap', 60, 25);
    const report = run(fleet([node('a', replace('DiskIOProblem', stale))]));
    expect(step(report, 'diskIO').verdict).toBe('unknown');
    expect(step(report, 'diskIO').summary).toContain('not re-stated for 25m');
    expect(report.exitCode).toBe(0);
  });

  it('a container runtime that stopped answering its CRI Status is a step 4 problem, with what to run on the node', () => {
    const hung = cond('ContainerRuntimeProblem', 'True', probeReasons.runtime.unresponsive, 'the runtime at /run/containerd/containerd.sock is unresponsive: no answer within 5000ms', 4);
    const report = run(fleet([node('a', (c) => [...c, hung]), node('b', (c) => [...c, cond('ContainerRuntimeProblem', 'False', probeReasons.runtime.healthy)])]));
    const kubelet = step(report, 'kubelet');
    expect(kubelet.verdict).toBe('problem');
    expect(kubelet.summary).toContain('ContainerRuntimeProblem');
    expect(kubelet.findings[0]?.next[0]).toMatch(/does not answer its CRI Status in time.*journalctl -u containerd/);
    expect(step(report, 'problemDetector').verdict).toBe('ok');
  });

  it("AKS's own KubeletProblem (node-problem-detector's reasons) is reported in step 5, not read as nodepulse's", () => {
    const npd = cond('KubeletProblem', 'True', 'KubeletIsDown', 'kubelet service is not running', 3);
    const report = run(fleet([node('a', replace('KubeletProblem', npd))]));
    expect(step(report, 'kubelet').verdict).toBe('ok');
    expect(step(report, 'problemDetector')).toMatchObject({ verdict: 'problem' });
    expect(step(report, 'problemDetector').summary).toContain('a KubeletProblem (KubeletIsDown)');
  });

  it('a NotReady node the cloud provider shut down is a warning, not a problem to repair', () => {
    const off = node('a', replace('Ready', cond('Ready', 'Unknown', 'NodeStatusUnknown', 'Kubelet stopped posting node status.', 20)), {
      taints: [{ key: foreignTaints.shutdown, effect: 'NoSchedule' }],
    });
    const nodes = step(run(fleet([off, node('b')])), 'nodes');
    expect(nodes.verdict).toBe('warning');
    expect(nodes.findings[0]?.summary).toContain('its VM is shut down');
  });

  it("shows where a node stands on the controller's ladder, from its state annotation and events", () => {
    const state = serializeRemediationState(startStep(undefined, 'reboot', 2, now - minutes(3)));
    const event: EventView = { node: 'a', source: components.controller, type: 'Normal', reason: 'NodeRebootStart', message: 'reboot started', count: 1, at: now - minutes(3) };
    const report = run(fleet([node('a', replace('Ready', cond('Ready', 'False', 'KubeletNotReady', 'PLEG is not healthy', 9)), { remediationState: state }), node('b')], { events: [event] }));
    const finding = step(report, 'nodes').findings[0];
    expect(finding?.summary).toBe('NotReady (KubeletNotReady) for 9m: PLEG is not healthy; nodepulse auto-repair: reboot started 3m ago, attempt 2');
    expect(finding?.evidence).toContainEqual(expect.objectContaining({ kind: 'remediation', step: 'reboot', phase: 'started', attempt: 2 }));
    expect(finding?.evidence).toContainEqual(expect.objectContaining({ kind: 'event', source: components.controller, reason: 'NodeRebootStart' }));
  });

  it('an aks-auto-repair event on a node is shown as the platform repairing it; the needs-human label is a problem', () => {
    const aks: EventView = { node: 'a', source: components.aksAutoRepair, type: 'Normal', reason: 'NodeRebootStart', message: 'Node auto-repair is rebooting the node', count: 1, at: now - minutes(2) };
    const report = run(fleet([node('a'), node('b', (c) => c, { needsHuman: true })], { events: [aks] }));
    const findings = step(report, 'nodes').findings;
    expect(findings.map((f) => [f.node, f.verdict])).toEqual([
      ['b', 'problem'],
      ['a', 'warning'],
    ]);
    expect(findings[1]?.summary).toBe('aks-auto-repair NodeRebootStart 2m ago: Node auto-repair is rebooting the node');
    expect(findings[0]?.next[0]).toContain(`kubectl describe node b`);
    expect(keys.needsHuman).toBe('nodepulse.io/needs-human');
  });

  it('a node without nodepulse conditions in a fleet that has them is a warning in step 5', () => {
    const report = run(fleet([node('a'), node('b', (c) => c.filter((x) => !x.type.endsWith('Problem')))]));
    expect(step(report, 'problemDetector').findings[0]).toMatchObject({ node: 'b', verdict: 'warning' });
    expect(step(report, 'dns').nodes.notMeasured).toBe(1);
  });

  it('an agent check that cannot read /proc is unknown with the mount to check', () => {
    const broken = cond('MemoryPressureProblem', 'Unknown', 'ProbeReadError', 'cannot use /host/proc/meminfo: ENOENT');
    const finding = step(run(fleet([node('a', replace('MemoryPressureProblem', broken))])), 'nodes').findings[0];
    expect(finding?.verdict).toBe('unknown');
    expect(finding?.next[0]).toMatch(/procRoot\/sysRoot/);
  });

  it('--node reports every finding of that node, ok ones too', () => {
    const report = run(fleet([node('a')]), 'a');
    const ofNode = report.steps.map((s) => s.findings.filter((f) => f.node === 'a').map((f) => f.verdict));
    expect(ofNode).toEqual([['ok'], ['ok'], ['ok'], ['ok'], ['ok'], ['ok']]);
  });

  it('the text form leads with one line per step, then the details when asked', () => {
    const throttled = cond('DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'sda at cap', 14);
    const report = run(fleet([node('a', replace('DiskIOProblem', throttled)), node('b')]));
    const summary = renderText(report, { details: false, program: 'nodepulse' }).split('\n');
    expect(summary[0]).toBe('nodepulse doctor at 2026-12-01T12:00:00.000Z: 2 node(s) (nodepulse on 2 of 2), context test, https://127.0.0.1:6443');
    expect(summary.slice(2, 8).map((l) => l.slice(0, 11))).toEqual(['1. ok      ', '2. ok      ', '3. ok      ', '4. ok      ', '5. ok      ', '6. problem ']);
    expect(summary).toContain('Evidence and next steps: nodepulse doctor --verbose, or --node NAME for one node.');
    const details = renderText(report, { details: true, program: 'nodepulse' });
    expect(details).toContain('   PROBLEM a: DiskIOProblem IOThrottled for 14m: sda at cap');
    expect(details).toContain('      condition DiskIOProblem=True IOThrottled since 2026-12-01T11:46:00.000Z: sda at cap');
  });
});

describe('doctor DNS reading (the guide: which checks fail together)', () => {
  const clusterOnly = {
    reason: 'ClusterDNSServfail',
    message: 'ClusterDNS (kubernetes.default.svc.cluster.local A via 10.0.0.10:53): servfail after 3 ms: SERVFAIL',
  };
  it('cluster DNS alone failing points at CoreDNS', () => {
    expect(failingChecks(clusterOnly)).toEqual([{ check: 'ClusterDNS', outcome: 'servfail' }]);
    expect(dnsAdvice(clusterOnly)).toBe('ClusterDNS fails while Upstream passes: suspect CoreDNS — kubectl -n kube-system logs -l k8s-app=kube-dns');
  });
  it('cluster and node resolution failing together point at the network', () => {
    const both = {
      reason: 'UpstreamTimeout',
      message: 'Upstream (microsoft.com A via 168.63.129.16:53): timeout after 2000 ms: no answer; ClusterDNS (kubernetes.default.svc.cluster.local A via 10.0.0.10:53): timeout after 2000 ms: no answer',
    };
    expect(dnsAdvice(both)).toMatch(/^cluster DNS and the node's own resolution both fail: suspect routing, firewall or ports/);
  });
  it('a public answer for the API server FQDN of a private cluster names the private DNS zone', () => {
    const pub = { reason: 'APIServerDNSPublicAnswer', message: 'APIServerDNS (x.privatelink.eastus.azmk8s.io A via 10.0.0.4:53): publicAnswer after 2 ms: resolves to public 20.1.2.3' };
    expect(dnsAdvice(pub)).toMatch(/private DNS zone/);
  });
  it('numbered resolver checks read as NodeDNS', () => {
    expect(failingChecks({ reason: 'NodeDNS2Timeout', message: null })).toEqual([{ check: 'NodeDNS' }]);
  });
});
