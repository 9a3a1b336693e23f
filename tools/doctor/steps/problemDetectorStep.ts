import { components } from '../../../common/contract.js';
import { formatDuration } from '../../../common/duration.js';
import { conditionEvidence, eventEvidence, type ConditionView, type NodeView } from '../clusterFacts.js';
import { age, combine, ownsCondition, shorten, stepReport, type DoctorContext, type Item } from '../judging.js';
import type { StepReport } from '../report.js';

/**
 * Step 5: what node-problem-detector style reporters say: the conditions neither the kubelet
 * nor nodepulse's probes own (NPD's KernelDeadlock, ReadonlyFilesystem, Frequent*Restart,
 * AKS's VMEventScheduled, ...), whether the nodepulse agent itself reports (present, current,
 * able to run its checks), and the temporary problems it reported as Events.
 */
const kubeletTypes: ReadonlySet<string> = new Set(['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable']);
const foreignAdvice: Array<[RegExp, string]> = [
  [/^KernelDeadlock$/, 'the kernel is hung: drain the node, then restart or reimage it'],
  [/^ReadonlyFilesystem$/, 'a filesystem went read-only after disk errors: drain the node and reimage it'],
  [/^Frequent(Kubelet|Docker|Containerd)Restart$/, 'a node service keeps restarting: on the node, journalctl -u kubelet (or containerd) --since -1h'],
  [/^VMEventScheduled$/, 'the platform has scheduled maintenance on this VM: drain the node before it starts'],
  [/^FilesystemCorruptionProblem$/, 'filesystem corruption: drain the node and reimage it'],
];
/** Temporary problems within the window from which they are reported. */
const temporaryProblemsReported = 1;

export function problemDetectorStep(ctx: DoctorContext): StepReport {
  const nodepulse = ctx.nodepulseNodes.size > 0;
  return stepReport('problemDetector', ctx, (node) => combine(node.name, [...foreignItems(node, ctx), agentPresenceItem(node, ctx), temporaryProblemsItem(node, ctx)]), {
    ...(nodepulse
      ? {}
      : {
          withNodepulse:
            "nodepulse's agent reports as node-problem-detector does, on every node: conditions for CPU, memory, PID, disk IO and space pressure, DNS, the kubelet and the tunnel, and temporary problems as Events",
        }),
    okSummary: (n) => `${n} with nothing reported`,
  });
}

function isForeign(c: ConditionView): boolean {
  return !kubeletTypes.has(c.type) && !ownsCondition(c);
}

function foreignItems(node: NodeView, ctx: DoctorContext): Item[] {
  return node.conditions.filter(isForeign).map((c) => {
    const evidence = [conditionEvidence(c)];
    if (c.status === 'False') return { verdict: 'ok', summary: `${c.type} ${c.reason ?? ''}`.trim(), evidence };
    const advice = foreignAdvice.find(([pattern]) => pattern.test(c.type))?.[1] ?? `kubectl describe node ${node.name}; read the detector's own log`;
    return {
      verdict: c.status === 'True' ? 'problem' : 'unknown',
      summary: `${c.type} ${c.status === 'True' ? '' : 'Unknown '}(${c.reason ?? 'no reason'}) for ${age(ctx, c.since)}${c.message ? `: ${shorten(c.message, 80)}` : ''}`,
      evidence,
      next: advice,
    };
  });
}

/** Where nodepulse runs in the cluster: a node without its conditions, or with none current, has no agent reporting. */
function agentPresenceItem(node: NodeView, ctx: DoctorContext): Item | undefined {
  if (ctx.nodepulseNodes.size === 0) return undefined;
  const agentPods = `kubectl -n nodepulse get pods -o wide --field-selector spec.nodeName=${node.name}`;
  const own = node.conditions.filter(ownsCondition);
  if (own.length === 0) {
    return {
      verdict: 'warning',
      summary: `no nodepulse conditions, though ${ctx.nodepulseNodes.size} other node(s) have them: the agent does not run here`,
      evidence: [],
      next: `check the DaemonSet's nodeSelector and tolerations: ${agentPods}`,
    };
  }
  const latest = Math.max(...own.map((c) => c.heartbeat ?? c.since ?? 0));
  if (ctx.now - latest > ctx.agentStaleMs) {
    return {
      verdict: 'warning',
      summary: `the nodepulse agent last reported ${formatDuration(ctx.now - latest)} ago: its conditions are out of date`,
      evidence: own.map(conditionEvidence),
      next: `is it running? ${agentPods}`,
    };
  }
  return { verdict: 'ok', summary: `nodepulse agent reporting (${own.length} checks)`, evidence: [] };
}

function temporaryProblemsItem(node: NodeView, ctx: DoctorContext): Item | undefined {
  const trueReasons = new Set(node.conditions.filter((c) => c.status === 'True').map((c) => c.reason));
  // A Warning about a condition that is True now is that condition's transition, already reported.
  const temporary = (ctx.eventsByNode.get(node.name) ?? []).filter((e) => e.source === components.agent && e.type === 'Warning' && !trueReasons.has(e.reason));
  const total = temporary.reduce((sum, e) => sum + e.count, 0);
  if (total < temporaryProblemsReported) return undefined;
  const byReason = new Map<string, number>();
  for (const e of temporary) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + e.count);
  return {
    verdict: 'warning',
    summary: `${total} temporary problem(s) in the last ${formatDuration(ctx.eventWindowMs)}: ${[...byReason].map(([r, n]) => `${r} x${n}`).join(', ')}`,
    evidence: temporary.slice(0, 5).map(eventEvidence),
    next: `below the failure threshold for now; kubectl get events -n default --field-selector involvedObject.name=${node.name},source=${components.agent}`,
  };
}
