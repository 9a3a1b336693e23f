import { components, controllerEventReasons, foreignTaints, keys, stepEventReason, type LadderStep } from '../../../common/contract.js';
import { conditionEvidence, eventEvidence, iso, type EventView, type NodeView } from '../clusterFacts.js';
import { age, agentItem, combine, condition, nodepulseMeasures, shorten, stepReport, type DoctorContext, type Item } from '../judging.js';
import { readLadderPosition } from '../remediationReader.js';
import type { StepReport } from '../report.js';

/**
 * Step 1: is every node Ready, and is any under pressure? Ready and NetworkUnavailable are the
 * kubelet's; CPU, memory, PID and disk space pressure are nodepulse's. Where a node stands on
 * an auto-repair ladder (ours or AKS's) is part of its readiness story.
 */
const ladderSteps: LadderStep[] = ['reboot', 'reimage', 'redeploy'];
const ladderReasons: ReadonlySet<string> = new Set([
  ...ladderSteps.flatMap((s) => (['Start', 'End', 'Error'] as const).map((phase) => stepEventReason(s, phase))),
  ...Object.values(controllerEventReasons),
]);
const pressureProbes = ['cpu', 'memory', 'pid', 'diskSpace'] as const;
const errorReasons: ReadonlySet<string> = new Set(ladderSteps.map((s) => stepEventReason(s, 'Error')));

export function nodesStep(ctx: DoctorContext): StepReport {
  return stepReport(
    'nodes',
    ctx,
    (node) =>
      combine(node.name, [
        readyItem(node, ctx),
        networkItem(node, ctx),
        agentItem(node, 'cpu', ctx, () => `find what burns CPU on the node: kubectl top pods -A --sort-by=cpu --field-selector spec.nodeName=${node.name}; set CPU limits or move pods off`),
        agentItem(node, 'memory', ctx, () => `the kubelet evicts below its memory.available threshold: kubectl top pods -A --sort-by=memory --field-selector spec.nodeName=${node.name}; set memory limits or add capacity`),
        agentItem(node, 'pid', ctx, () => `a process is forking without bound: find it on the node (ps -eLf | wc -l, ps -e --sort=-nlwp); set the kubelet's podPidsLimit`),
        agentItem(node, 'diskSpace', ctx, () => `free space on the node: crictl rmi --prune, remove old logs; the kubelet's image GC runs at its high threshold`),
        remediationItem(node, ctx),
      ]),
    {
      ...(pressureProbes.some((probe) => nodepulseMeasures(ctx, probe))
        ? {}
        : { withNodepulse: "Kubernetes reports only the kubelet's eviction signals; nodepulse's agent measures CPU, memory and IO stall (PSI), PID use and disk space on every node before the kubelet evicts" }),
      okSummary: (n) => `${n} Ready, no pressure`,
    },
  );
}

function readyItem(node: NodeView, ctx: DoctorContext): Item {
  const ready = condition(node, 'Ready');
  if (!ready) {
    return {
      verdict: 'unknown',
      summary: 'no Ready condition: the kubelet has never posted status',
      evidence: [],
      next: `kubectl describe node ${node.name}; on the node: systemctl status kubelet`,
    };
  }
  const evidence = [conditionEvidence(ready)];
  if (ready.status === 'True') return { verdict: 'ok', summary: 'Ready', evidence };
  const status = ready.status === 'Unknown' ? `NotReady: status Unknown (${ready.reason ?? 'no reason'})` : `NotReady (${ready.reason ?? 'no reason'})`;
  const summary = `${status} for ${age(ctx, ready.since)}${ready.message ? `: ${shorten(ready.message, 80)}` : ''}`;
  const taint = node.taints.find((t) => t.key === foreignTaints.shutdown || t.key === foreignTaints.toBeDeleted);
  if (taint) {
    evidence.push({ kind: 'taint', key: taint.key, effect: taint.effect });
    const why = taint.key === foreignTaints.shutdown ? 'its VM is shut down (cloud provider taint)' : 'the cluster autoscaler is removing it';
    return { verdict: 'warning', summary: `${summary}; ${why}, so it is not repaired`, evidence, next: `nothing to repair; start the VM if it should run, or let the scale-down finish` };
  }
  return {
    verdict: 'problem',
    summary,
    evidence,
    next: `kubectl describe node ${node.name}; the kubelet (step 4) and the tunnel (step 2) tell why; AKS auto-repair reboots a node NotReady for 5+ minutes`,
  };
}

function networkItem(node: NodeView, ctx: DoctorContext): Item | undefined {
  const c = condition(node, 'NetworkUnavailable');
  if (!c || c.status !== 'True') return undefined;
  return {
    verdict: 'problem',
    summary: `NetworkUnavailable (${c.reason ?? 'no reason'}) for ${age(ctx, c.since)}`,
    evidence: [conditionEvidence(c)],
    next: `the node's routes or CNI are not set up: kubectl -n kube-system get pods -o wide --field-selector spec.nodeName=${node.name}`,
  };
}

function ladderEvents(node: NodeView, ctx: DoctorContext): EventView[] {
  return (ctx.eventsByNode.get(node.name) ?? []).filter(
    (e) => e.source === components.aksAutoRepair || (e.source === components.controller && ladderReasons.has(e.reason)),
  );
}

/** Where the node stands on a repair ladder: our controller's state annotation and both remediators' events. */
function remediationItem(node: NodeView, ctx: DoctorContext): Item | undefined {
  const events = ladderEvents(node, ctx);
  const evidence = events.slice(0, 5).map(eventEvidence);
  const eventsCommand = `kubectl get events -n default --field-selector involvedObject.name=${node.name}`;
  const position = readLadderPosition(node.remediationState);
  if (position && 'unreadable' in position) {
    return {
      verdict: 'warning',
      summary: `remediation state annotation unreadable (${position.unreadable}): the controller leaves this node alone`,
      evidence,
      next: `fix or remove it: kubectl annotate node ${node.name} ${keys.remediationState}-`,
    };
  }
  if (position) {
    evidence.unshift({
      kind: 'remediation',
      step: position.step,
      phase: position.phase,
      attempt: position.attempt,
      stepStartedAt: iso(position.stepStartedAt),
      stepEndedAt: iso(position.stepEndedAt),
      detail: position.detail ?? null,
    });
  }
  if (node.needsHuman || position?.phase === 'needs-human') {
    return {
      verdict: 'problem',
      summary: `auto-repair gave up${position?.detail ? `: ${shorten(position.detail, 100)}` : ''}`,
      evidence,
      next: `a human investigates: kubectl describe node ${node.name}; ${eventsCommand}`,
    };
  }
  if (position && position.phase !== 'recovered') {
    const at = position.stepEndedAt ?? position.stepStartedAt;
    const detail = position.detail ? ` (${position.detail})` : '';
    return {
      verdict: 'warning',
      summary: `nodepulse auto-repair: ${position.step} ${position.phase}${detail} ${age(ctx, at)} ago, attempt ${position.attempt}`,
      evidence,
      next: `the ladder is under way; follow it: ${eventsCommand}`,
    };
  }
  const platform = events.filter((e) => e.source === components.aksAutoRepair);
  const failed = events.find((e) => errorReasons.has(e.reason));
  if (failed || platform.length > 0) {
    const latest = failed ?? (platform[0] as EventView);
    return {
      verdict: 'warning',
      summary: `${latest.source} ${latest.reason} ${age(ctx, latest.at)} ago${latest.message ? `: ${shorten(latest.message, 80)}` : ''}`,
      evidence,
      next: failed ? `a repair step failed with the error code in its message; ${eventsCommand}` : `AKS is repairing this node; ${eventsCommand}`,
    };
  }
  if (position) return { verdict: 'ok', summary: `recovered after ${position.step} ${age(ctx, position.stepEndedAt ?? position.stepStartedAt)} ago`, evidence };
  return evidence.length > 0 ? { verdict: 'ok', summary: 'recent remediation events', evidence } : undefined;
}
