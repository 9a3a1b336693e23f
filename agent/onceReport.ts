import type { ProbeName } from '../common/contract.js';
import type { NodeInventory } from './nodeInventory.js';
import { isAgentFault, type Probe, type ProbeResult } from './probes/probe.js';
import { renderResult } from './renderState.js';

/**
 * `--once`: every probe sampled once, as the seed's manual check would. Probes that measure
 * rates need a baseline first; those mark their first result `baseline: true` and get a
 * second sample after `baselineGapMs`.
 */
export async function sampleOnce(
  probes: readonly Probe[],
  sample: (probe: Probe) => Promise<ProbeResult>,
  baselineGapMs = 1000,
): Promise<ProbeResult[]> {
  const first = await Promise.all(probes.map((probe) => sample(probe)));
  if (!first.some((r) => r.figures.baseline === true)) return first;
  await new Promise((resolve) => setTimeout(resolve, baselineGapMs));
  return Promise.all(probes.map((probe, i) => (first[i]?.figures.baseline === true ? sample(probe) : (first[i] as ProbeResult))));
}

/** A node problem, or an agent problem (the check could not see the node: ProbeError, ProbeReadError). */
export type OnceStatus = 'ok' | 'problem' | 'agentProblem';

export function onceStatus(r: ProbeResult): OnceStatus {
  return r.healthy ? 'ok' : isAgentFault(r) ? 'agentProblem' : 'problem';
}

/** Why a probe that is switched on did not run (buildProbes skips those that need the API server). */
const skippedWhy = 'needs the API server: runs only with publish.enabled: true';

/** 0: no problem; 1: the node has a problem; 3: no node problem found, but a check could not run (an agent problem). */
export function onceExitCode(results: readonly ProbeResult[]): 0 | 1 | 3 {
  const statuses = results.map(onceStatus);
  return statuses.includes('problem') ? 1 : statuses.includes('agentProblem') ? 3 : 0;
}

const statusWords: Record<OnceStatus, string> = { problem: 'PROBLEM', agentProblem: 'AGENT PROBLEM', ok: 'OK' };
const order: Record<OnceStatus, number> = { problem: 0, agentProblem: 1, ok: 2 };

/** A table a person reads in a terminal: one row per probe, node problems first, then agent problems, then skipped probes. */
export function renderTable(results: readonly ProbeResult[], skipped: readonly ProbeName[]): string {
  const rows = [...results]
    .sort((a, b) => order[onceStatus(a)] - order[onceStatus(b)] || a.probe.localeCompare(b.probe))
    .map((r) => [r.probe, statusWords[onceStatus(r)], r.reason, `${r.durationMs}ms`, r.message]);
  for (const probe of skipped) rows.push([probe, 'SKIPPED', '-', '-', skippedWhy]);
  const header = ['PROBE', 'STATUS', 'REASON', 'TOOK', 'DETAILS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  return [line(header), ...rows.map(line), '', `${summaryLine(summarise(results, skipped))}`, ''].join('\n');
}

export interface OnceSummary {
  checked: number;
  ok: number;
  /** Node problems. */
  problems: number;
  /** Checks that could not see the node (the agent's problem, not the node's). */
  agentProblems: number;
  skipped: number;
  exitCode: 0 | 1 | 3;
}

function summarise(results: readonly ProbeResult[], skipped: readonly ProbeName[]): OnceSummary {
  const count = (status: OnceStatus) => results.filter((r) => onceStatus(r) === status).length;
  return {
    checked: results.length,
    ok: count('ok'),
    problems: count('problem'),
    agentProblems: count('agentProblem'),
    skipped: skipped.length,
    exitCode: onceExitCode(results),
  };
}

function summaryLine(s: OnceSummary): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = [s.problems === 0 ? 'no node problem found' : `${plural(s.problems, 'node problem')} found`];
  if (s.agentProblems > 0) {
    parts.push(`${plural(s.agentProblems, 'check')} could not see the node (an agent problem, not the node's: see AGENT PROBLEM rows)`);
  }
  if (s.skipped > 0) parts.push(`${s.skipped} skipped`);
  return parts.join('; ');
}

/** The JSON form: the same facts as the table, times in ISO 8601 as on /conditions. */
export function onceJson(results: readonly ProbeResult[], skipped: readonly ProbeName[], node: NodeInventory, at: Date) {
  return {
    at: at.toISOString(),
    node,
    summary: summarise(results, skipped),
    results: results.map((r) => ({ probe: r.probe, status: onceStatus(r), ...renderResult(r) })),
    skipped: skipped.map((probe) => ({ probe, why: skippedWhy })),
  };
}
