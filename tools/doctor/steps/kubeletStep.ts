import { probeReasons } from '../../../common/contract.js';
import { formatDuration } from '../../../common/duration.js';
import { conditionEvidence, eventEvidence, type NodeView } from '../clusterFacts.js';
import { age, agentItem, combine, condition, nodepulseMeasures, shorten, stepReport, type DoctorContext, type Item } from '../judging.js';
import type { StepReport } from '../report.js';

/**
 * Step 4: is the kubelet running, posting status, and free of the pressure it evicts on?
 * From Kubernetes: Ready's reason and heartbeat, the kubelet's MemoryPressure, DiskPressure
 * and PIDPressure, and its Warning events. From nodepulse: the kubelet's /healthz, asked on
 * the node, and the container runtime's CRI Status, which the kubelet depends on.
 */
const kubeletPressure: Record<string, string> = {
  MemoryPressure: 'the kubelet is evicting pods for memory: kubectl top pods -A --sort-by=memory --field-selector spec.nodeName=',
  DiskPressure: 'the kubelet is evicting pods for disk space: free image and log space on the node (crictl rmi --prune); see step 1',
  PIDPressure: 'the kubelet is evicting pods for process IDs: find the forking process on the node (ps -e --sort=-nlwp)',
};
/** Kubelet Warning events within the window from which the count is reported as growing, not occasional. */
const warningEventsReported = 5;
const journal = 'on the node: systemctl status kubelet; journalctl -u kubelet --since -1h';

const advice: Record<string, string> = {
  [probeReasons.kubelet.unreachable]: `nothing answers the kubelet's healthz port: the kubelet is not running; ${journal}`,
  [probeReasons.kubelet.timeout]: `the kubelet is too slow to answer its healthz: the node is overloaded (steps 1 and 6); ${journal}`,
  [probeReasons.kubelet.unhealthy]: `the kubelet says it is unhealthy: ${journal}`,
};

const runtimeJournal = 'on the node: systemctl status containerd; journalctl -u containerd --since -1h; crictl info';
const runtimeAdvice: Record<string, string> = {
  [probeReasons.runtime.down]: `containerd is not running (its socket refuses or is gone): ${runtimeJournal}`,
  [probeReasons.runtime.unresponsive]: `containerd does not answer its CRI Status in time: hung, or the node is overloaded (steps 1 and 6); ${runtimeJournal}`,
  [probeReasons.runtime.notReady]: `containerd says its runtime is not ready: ${runtimeJournal}`,
  [probeReasons.runtime.networkNotReady]: 'the CNI plugin is not ready (NetworkReady=false), so no pod gets a network: check the CNI pods on this node and /etc/cni/net.d; crictl info',
  [probeReasons.runtime.statusFailed]: `containerd answered its CRI Status with an error: ${runtimeJournal}`,
};

export function kubeletStep(ctx: DoctorContext): StepReport {
  return stepReport(
    'kubelet',
    ctx,
    (node) =>
      combine(node.name, [
        statusItem(node, ctx),
        ...Object.keys(kubeletPressure).map((type) => pressureItem(node, type, ctx)),
        agentItem(node, 'kubelet', ctx, (c) => advice[c.reason ?? ''] ?? journal),
        agentItem(node, 'runtime', ctx, (c) => runtimeAdvice[c.reason ?? ''] ?? runtimeJournal),
        warningEventsItem(node, ctx),
      ]),
    {
      ...(nodepulseMeasures(ctx, 'kubelet') ? {} : { withNodepulse: "nodepulse's kubelet probe asks the kubelet's /healthz on every node, so a kubelet that still posts status but is failing shows before the node goes NotReady" }),
      okSummary: (n) => `${n} posting status, no kubelet pressure`,
    },
  );
}

function statusItem(node: NodeView, ctx: DoctorContext): Item | undefined {
  const ready = condition(node, 'Ready');
  if (!ready) return undefined;
  const evidence = [conditionEvidence(ready)];
  if (ready.status === 'True') return { verdict: 'ok', summary: 'kubelet posting status', evidence };
  if (ready.status === 'Unknown') {
    return {
      verdict: 'problem',
      summary: `kubelet stopped posting status ${age(ctx, ready.heartbeat ?? ready.since)} ago (${ready.reason ?? 'no reason'})`,
      evidence,
      next: `the kubelet is down or the node cannot reach the API server (step 2); ${journal}`,
    };
  }
  return {
    verdict: 'problem',
    summary: `kubelet reports NotReady: ${shorten(ready.message ?? ready.reason, 100)}`,
    evidence,
    next: `${journal}; "container runtime is down" or "PLEG is not healthy" point at containerd: systemctl status containerd`,
  };
}

function pressureItem(node: NodeView, type: string, ctx: DoctorContext): Item | undefined {
  const c = condition(node, type);
  if (!c) return undefined;
  const evidence = [conditionEvidence(c)];
  if (c.status !== 'True') return { verdict: 'ok', summary: `no ${type}`, evidence };
  const next = kubeletPressure[type] as string;
  return { verdict: 'problem', summary: `${type} (${c.reason ?? 'no reason'}) for ${age(ctx, c.since)}`, evidence, next: next.endsWith('=') ? `${next}${node.name}` : next };
}

function warningEventsItem(node: NodeView, ctx: DoctorContext): Item | undefined {
  const warnings = (ctx.eventsByNode.get(node.name) ?? []).filter((e) => e.source === 'kubelet' && e.type === 'Warning');
  const total = warnings.reduce((sum, e) => sum + e.count, 0);
  if (total < warningEventsReported) return undefined;
  const byReason = new Map<string, number>();
  for (const e of warnings) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + e.count);
  const reasons = [...byReason].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} x${n}`).join(', ');
  return {
    verdict: 'warning',
    summary: `${total} kubelet warnings in the last ${formatDuration(ctx.eventWindowMs)}: ${reasons}`,
    evidence: warnings.slice(0, 5).map(eventEvidence),
    next: `an occasional error is normal, a steadily growing count is not: ${journal}`,
  };
}
