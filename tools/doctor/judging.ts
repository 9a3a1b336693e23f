import { conditionTypeByProbe, dnsOutcomeReasons, engineReasons, probeReasons, type ProbeName } from '../../common/contract.js';
import { formatDuration } from '../../common/duration.js';
import { conditionEvidence, type ClusterFacts, type ConditionView, type EventView, type NodeView } from './clusterFacts.js';
import { stepIds, stepTitles, verdicts, worst, type Evidence, type Finding, type StepId, type StepReport, type Verdict } from './report.js';

/** What every step reads besides the facts: the clock and the rules for reading agent conditions. */
export interface DoctorContext {
  facts: ClusterFacts;
  now: number;
  /** A nodepulse condition not re-stated for this long is out of date: two agent heartbeats. */
  agentStaleMs: number;
  /** How far back Events count. */
  eventWindowMs: number;
  eventsByNode: Map<string, EventView[]>;
  /** Nodes that carry nodepulse agent conditions. */
  nodepulseNodes: ReadonlySet<string>;
  /** With --node: every finding of that node is reported, ok ones too. */
  focus?: string;
}

/** One thing found on one node within a step; a node's finding combines its items. */
export interface Item {
  verdict: Verdict;
  summary: string;
  evidence: Evidence[];
  next?: string;
}

export function contextFor(facts: ClusterFacts, now: number, options: { agentStaleMs: number; eventWindowMs: number; focus?: string }): DoctorContext {
  const eventsByNode = new Map<string, EventView[]>();
  for (const event of facts.events) {
    if (event.at !== undefined && now - event.at > options.eventWindowMs) continue;
    const list = eventsByNode.get(event.node);
    if (list) list.push(event);
    else eventsByNode.set(event.node, [event]);
  }
  const nodepulseNodes = new Set(facts.nodes.filter((n) => n.conditions.some((c) => ownsCondition(c))).map((n) => n.name));
  const ctx: DoctorContext = { facts, now, agentStaleMs: options.agentStaleMs, eventWindowMs: options.eventWindowMs, eventsByNode, nodepulseNodes };
  if (options.focus !== undefined) ctx.focus = options.focus;
  return ctx;
}

const probeByType = new Map<string, ProbeName>(Object.entries(conditionTypeByProbe).map(([probe, type]) => [type, probe as ProbeName]));
const ownEngineReasons: ReadonlySet<string> = new Set(Object.values(engineReasons));
const dnsSuffixes = Object.values(dnsOutcomeReasons);

/**
 * Whether nodepulse wrote this condition: its type is one of ours and its reason one our
 * probe gives. AKS's node problem detector also writes a `KubeletProblem`, with reasons of its own.
 */
export function ownsCondition(c: ConditionView): boolean {
  const probe = probeByType.get(c.type);
  if (probe === undefined) return false;
  const reason = c.reason ?? '';
  if (ownEngineReasons.has(reason)) return true;
  if (probe === 'dns') return reason === probeReasons.dns.healthy || dnsSuffixes.some((suffix) => reason.endsWith(suffix) && reason.length > suffix.length);
  return (Object.values(probeReasons[probe]) as string[]).includes(reason);
}

export function condition(node: NodeView, type: string): ConditionView | undefined {
  return node.conditions.find((c) => c.type === type);
}

export function age(ctx: DoctorContext, since: number | undefined): string {
  return since === undefined ? 'an unknown time' : formatDuration(ctx.now - since);
}

export function shorten(text: string | null, max = 120): string {
  if (!text) return '';
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** Whether any node carries this probe's condition (else the step says what nodepulse would add). */
export function nodepulseMeasures(ctx: DoctorContext, probe: ProbeName): boolean {
  const type = conditionTypeByProbe[probe];
  return ctx.facts.nodes.some((n) => n.conditions.some((c) => c.type === type && ownsCondition(c)));
}

const agentPodCommand = (node: string) => `kubectl -n nodepulse get pods -o wide --field-selector spec.nodeName=${node}`;

/**
 * One nodepulse condition read as the controller reads it: absent (not measured), out of date
 * (its agent stopped re-stating it), the agent's own fault (Unknown), healthy, or a problem,
 * whose next action `advise` gives.
 */
export function agentItem(node: NodeView, probe: ProbeName, ctx: DoctorContext, advise: (c: ConditionView) => string): Item | undefined {
  const c = condition(node, conditionTypeByProbe[probe]);
  if (!c || !ownsCondition(c)) return undefined;
  const evidence = [conditionEvidence(c)];
  if (c.heartbeat !== undefined && ctx.now - c.heartbeat > ctx.agentStaleMs) {
    return {
      verdict: 'unknown',
      summary: `${c.type} not re-stated for ${age(ctx, c.heartbeat)}: the nodepulse agent may have stopped, so ${c.status} may be out of date`,
      evidence,
      next: `is the agent running on the node? ${agentPodCommand(node.name)}`,
    };
  }
  if (c.status === 'False') return { verdict: 'ok', summary: `${c.type} ${c.reason ?? ''}`.trim(), evidence };
  if (c.status === 'True') {
    return { verdict: 'problem', summary: `${c.type} ${c.reason ?? ''} for ${age(ctx, c.since)}: ${shorten(c.message)}`, evidence, next: advise(c) };
  }
  const readError = c.reason === engineReasons.probeReadError;
  return {
    verdict: 'unknown',
    summary: `${c.type} Unknown (${c.reason ?? 'no reason'}): the agent cannot run this check: ${shorten(c.message)}`,
    evidence,
    next: readError
      ? `the agent cannot read the node's /proc or /sys: check its procRoot/sysRoot and the DaemonSet's hostPath mounts (${agentPodCommand(node.name)})`
      : `read the agent's log on the node: ${agentPodCommand(node.name)}, then kubectl -n nodepulse logs <pod>`,
  };
}

/**
 * A node's finding in one step from its items: led by, and with the evidence of, what is not
 * ok (everything when all is ok); undefined when nothing in this step measured the node.
 */
export function combine(node: string, items: Array<Item | undefined>): Finding | undefined {
  const present = items.filter((i): i is Item => i !== undefined);
  if (present.length === 0) return undefined;
  const verdict = worst(present.map((i) => i.verdict));
  const shown = verdict === 'ok' ? present : present.filter((i) => i.verdict !== 'ok');
  // Worst first, so the summary line leads with what matters.
  shown.sort((a, b) => verdicts.indexOf(a.verdict) - verdicts.indexOf(b.verdict));
  return {
    node,
    verdict,
    summary: shown.map((i) => i.summary).join('; '),
    evidence: shown.flatMap((i) => i.evidence),
    next: [...new Set(shown.flatMap((i) => (i.next ? [i.next] : [])))],
  };
}

/** How many findings of each kind the one-line summary names before "and N more". */
const namedInSummary = 3;

/**
 * A step's report from each node's finding and the fleet-wide ones (the Deployment). The
 * summary names the worst few; `findings` keeps every one that is not ok.
 */
export function stepReport(
  id: StepId,
  ctx: DoctorContext,
  judge: (node: NodeView) => Finding | undefined,
  options: { fleet?: Finding[]; withNodepulse?: string; okSummary?: (measured: number) => string } = {},
): StepReport {
  const counts: StepReport['nodes'] = { problem: 0, warning: 0, unknown: 0, ok: 0, notMeasured: 0 };
  const found: Finding[] = [...(options.fleet ?? [])];
  for (const node of ctx.facts.nodes) {
    const finding = judge(node);
    if (!finding) {
      counts.notMeasured += 1;
      continue;
    }
    counts[finding.verdict] += 1;
    if (finding.verdict !== 'ok' || ctx.focus !== undefined) found.push(finding);
  }
  found.sort((a, b) => verdicts.indexOf(a.verdict) - verdicts.indexOf(b.verdict) || (a.node ?? '').localeCompare(b.node ?? ''));
  const measured = ctx.facts.nodes.length - counts.notMeasured;
  const verdict: Verdict = found.length === 0 && measured === 0 ? 'unknown' : worst(found.map((f) => f.verdict));
  const notOk = found.filter((f) => f.verdict !== 'ok');
  const nodesText = `${ctx.facts.nodes.length} node${ctx.facts.nodes.length === 1 ? '' : 's'}`;
  let summary: string;
  if (notOk.length === 0) {
    const fleetOk = (options.fleet ?? []).map((f) => f.summary);
    const nodesOk = measured === 0 ? 'nothing reports on the nodes' : (options.okSummary?.(measured) ?? `${measured} ok`);
    summary = [`${nodesText}: ${nodesOk}`, ...fleetOk].join('; ');
  } else {
    const tally = (['problem', 'warning', 'unknown'] as const)
      .map((v) => [v, notOk.filter((f) => f.verdict === v).length] as const)
      .filter(([, n]) => n > 0)
      .map(([v, n]) => `${n} ${v}${n === 1 ? '' : 's'}`)
      .join(', ');
    const named = notOk.slice(0, namedInSummary).map((f) => (f.node ? `${f.node} ${f.summary}` : f.summary));
    const more = notOk.length > namedInSummary ? `; and ${notOk.length - namedInSummary} more` : '';
    summary = `${nodesText}, ${tally}: ${named.join('; ')}${more}`;
  }
  return {
    number: stepIds.indexOf(id) + 1,
    id,
    title: stepTitles[id],
    verdict,
    nodes: counts,
    summary,
    findings: found,
    withNodepulse: options.withNodepulse ?? null,
  };
}
