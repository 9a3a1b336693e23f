import type { DoctorReport, Evidence, Finding, StepReport } from './report.js';

/**
 * The report for a person: one line per step first, then (with --verbose or --node) every
 * finding with its evidence and next action.
 */
export function renderText(report: DoctorReport, options: { details: boolean; program: string }): string {
  const scope = report.selector ? ` matching ${report.selector}` : '';
  const where = `${report.cluster.context ? `context ${report.cluster.context}, ` : ''}${report.cluster.server}`;
  const agents = report.nodepulseNodes === 0 ? 'nodepulse not reporting' : `nodepulse on ${report.nodepulseNodes} of ${report.nodes}`;
  const lines = [`nodepulse doctor at ${report.at}: ${report.nodes} node(s)${scope} (${agents}), ${where}`, ''];
  const width = Math.max(...report.steps.map((s) => s.verdict.length));
  for (const step of report.steps) lines.push(`${step.number}. ${step.verdict.padEnd(width)}  ${step.title}: ${step.summary}`);
  if (options.details) {
    for (const step of report.steps) lines.push('', ...stepDetails(step));
  } else if (report.steps.some((s) => s.findings.some((f) => f.verdict !== 'ok') || s.withNodepulse)) {
    lines.push('', `Evidence and next steps: ${options.program} doctor --verbose, or --node NAME for one node.`);
  }
  return `${lines.join('\n')}\n`;
}

function stepDetails(step: StepReport): string[] {
  const lines = [`== ${step.number}. ${step.title}: ${step.verdict}`];
  if (step.withNodepulse) lines.push(`   with nodepulse: ${step.withNodepulse}`);
  if (step.findings.length === 0) lines.push('   nothing to report');
  for (const finding of step.findings) lines.push(...findingLines(finding));
  return lines;
}

function findingLines(f: Finding): string[] {
  const lines = [`   ${f.verdict.toUpperCase()} ${f.node ?? '(cluster)'}: ${f.summary}`];
  for (const e of f.evidence) lines.push(`      ${evidenceLine(e)}`);
  for (const next of f.next) lines.push(`      next: ${next}`);
  return lines;
}

function evidenceLine(e: Evidence): string {
  switch (e.kind) {
    case 'condition':
      return `condition ${e.type}=${e.status}${e.reason ? ` ${e.reason}` : ''}${e.since ? ` since ${e.since}` : ''}${e.message ? `: ${e.message}` : ''}`;
    case 'deployment':
      return `deployment ${e.namespace}/${e.name}: ${e.ready}/${e.desired} ready, ${e.available} available, ${e.updated} updated`;
    case 'pod':
      return `pod ${e.namespace}/${e.name} on ${e.node ?? '(unscheduled)'}: ${e.ready ? 'ready' : 'not ready'}, ${e.restarts} restart(s)${e.lastTermination ? `, last ${e.lastTermination}` : ''}`;
    case 'event':
      return `event ${e.at ?? '(no time)'} ${e.source} ${e.type} ${e.reason}${e.count > 1 ? ` x${e.count}` : ''}: ${e.message}`;
    case 'remediation':
      return `remediation state: ${e.step} ${e.phase}, attempt ${e.attempt}, started ${e.stepStartedAt ?? '?'}${e.stepEndedAt ? `, ended ${e.stepEndedAt}` : ''}${e.detail ? `: ${e.detail}` : ''}`;
    case 'taint':
      return `taint ${e.key}:${e.effect}`;
  }
}
