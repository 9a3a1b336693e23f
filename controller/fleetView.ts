import type { CoreV1Event } from '@kubernetes/client-node';
import { components } from '../common/contract.js';
import { evaluateBreaker } from './circuitBreaker.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import type { FleetSummary } from './fleet.js';
import { columns, healthy, type FleetRows, type NodeRow } from './fleetRows.js';
import type { StoredState } from './remediationState.js';

/**
 * What the fleet page shows, built from the page's rows and the loop's read-only snapshot,
 * and the compact wire form the browser receives: the first message holds every row, each
 * later one only the rows that moved. Pure, so every section is tested on a fake clock.
 */

/** What the loop tells the page (ControllerLoop.fleetSnapshot()). */
export interface FleetSnapshot {
  /** Whether a node is in the controller's Node cache: rows of any other are dropped. */
  isCached(name: string): boolean;
  leading: boolean;
  /** Why this replica may not act now (its caches), if so. */
  notCurrent: string | undefined;
  /** The fleet's counts: the leader's only. */
  fleet: FleetSummary | undefined;
  /** What holds each node back (a skip rule or `defer`): the leader's only. */
  heldBack: ReadonlyMap<string, string>;
  /** The platform remediators' Events the controller watches (aks-auto-repair). */
  platformEvents: readonly CoreV1Event[];
}

/** A row on the wire: [name, one letter per column (T F U S -), reason index per column (-1 none), age in s per column (-1 none), flags]. */
export type WireRow = [string, string, number[], number[], string];

export interface LadderEntry {
  node: string;
  step?: string;
  phase: string;
  attempt?: number;
  stepStartedAt?: number;
  detail?: string;
  /** What the ladder does next and when (epoch ms), as far as the state says. */
  next: { at?: number; what: string };
  /** The rule that holds it back now (leader only). */
  heldBack?: string;
}

export interface TimelineEntry {
  at: number;
  node: string;
  source: string;
  type: string;
  reason: string;
  message: string;
}

export interface FleetSection {
  replica: { leading: boolean; notCurrent?: string };
  breaker?: {
    open: boolean;
    why: string;
    unhealthy: number;
    counted: number;
    inFlight: number;
    maxInFlight: number;
    paused: boolean;
    cooldownUntil?: number;
  };
  ladder: LadderEntry[];
  timeline: TimelineEntry[];
}

const timelineLength = 50;

/** Flags on the wire: h needs-human, q quarantined, s shut down, d being deleted. */
function flagsOf(row: NodeRow): string {
  return `${row.needsHuman ? 'h' : ''}${row.taints.quarantined ? 'q' : ''}${row.taints.shutdown ? 's' : ''}${row.taints.toBeDeleted ? 'd' : ''}`;
}

/** The letters of a row now: an agent cell whose heartbeat is older than `staleMs` reads S, as the controller reads it Unknown. */
export function cellsOf(row: NodeRow, now: number, staleMs: number): string {
  return row.status
    .map((s, i) => (i > 0 && s !== '-' && row.heartbeat[i] !== 0 && now - (row.heartbeat[i] as number) > staleMs ? 'S' : s))
    .join('');
}

/** What the state annotation says comes next, by its phase and the ladder's timings. */
export function nextAction(state: Exclude<StoredState, undefined>, config: ControllerConfig): { at?: number; what: string } {
  if (state.phase === 'unreadable') return { what: 'left alone until a person fixes or removes the state annotation' };
  const { ladder } = config;
  const bound = state.sequenceStartedAt + ladder.overallBoundSeconds * 1000;
  const ended = state.stepEndedAt ?? state.stepStartedAt;
  switch (state.phase) {
    case 'started':
      return { at: state.stepStartedAt + ladder.stepTimeoutSeconds * 1000, what: `${state.step} running; its outcome is due by then` };
    case 'ended':
      return { at: Math.min(ended + ladder.recoveryWaitSeconds[state.step] * 1000, bound), what: 'the next step, unless the node is healthy by then' };
    case 'failed':
      return state.permanent ? { what: `a human: ${state.step} can never run here (${state.error})` } : { at: ended, what: 'the next step, as soon as the safety rules allow' };
    case 'inconclusive':
      return { at: ended + ladder.retryDelaySeconds * 1000, what: `${state.step} again (the last outcome was unknown: ${state.error})` };
    case 'recovered':
      return { at: (state.recoveredAt ?? ended) + ladder.flapWindowSeconds * 1000, what: 'cleared, unless the node fails again before' };
    case 'needs-human':
      return { what: `a human: ${state.reason}` };
  }
}

function eventTime(e: CoreV1Event): number {
  const t = e.series?.lastObservedTime ?? e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp;
  const ms = t ? new Date(t).getTime() : Number.NaN;
  return Number.isNaN(ms) ? 0 : ms;
}

export function timelineEntry(e: CoreV1Event): TimelineEntry {
  return {
    at: eventTime(e),
    node: e.involvedObject?.name ?? '',
    source: e.source?.component || e.reportingComponent || components.aksAutoRepair,
    type: e.type ?? 'Normal',
    reason: e.reason ?? '',
    message: e.message ?? '',
  };
}

export function fleetSection(rows: FleetRows, snapshot: FleetSnapshot, config: ControllerConfig, ownEvents: readonly TimelineEntry[]): FleetSection {
  const section: FleetSection = { replica: { leading: snapshot.leading }, ladder: [], timeline: [] };
  if (snapshot.notCurrent !== undefined) section.replica.notCurrent = snapshot.notCurrent;
  const fleet = snapshot.fleet;
  if (fleet) {
    const verdict = evaluateBreaker(fleet.nodes, fleet.unhealthy, config.safety.circuitBreaker);
    section.breaker = {
      open: fleet.breakerOpen,
      why: verdict.why,
      unhealthy: fleet.unhealthy,
      counted: fleet.nodes,
      inFlight: fleet.inFlight,
      maxInFlight: config.safety.maxInFlight,
      paused: fleet.paused || config.paused,
    };
    const cooldownUntil = (fleet.stormEndedAt ?? -Infinity) + config.safety.stormCooldownSeconds * 1000;
    if (Number.isFinite(cooldownUntil)) section.breaker.cooldownUntil = cooldownUntil;
  }
  for (const row of rows.values()) {
    const held = snapshot.heldBack.get(row.name);
    if (row.ladder === undefined && held === undefined) continue;
    const entry: LadderEntry = row.ladder
      ? { node: row.name, phase: row.ladder.phase, next: nextAction(row.ladder, config) }
      : { node: row.name, phase: 'held back', next: { what: 'a first step once the rule lets go' } };
    if (row.ladder && row.ladder.phase !== 'unreadable') {
      entry.step = row.ladder.step;
      entry.attempt = row.ladder.attempt;
      entry.stepStartedAt = row.ladder.stepStartedAt;
      const detail = row.ladder.phase === 'needs-human' ? row.ladder.reason : row.ladder.error;
      if (detail !== undefined) entry.detail = detail;
    } else if (row.ladder) {
      entry.detail = row.ladder.error;
    }
    if (held !== undefined) entry.heldBack = held;
    section.ladder.push(entry);
  }
  section.ladder.sort((a, b) => (b.stepStartedAt ?? 0) - (a.stepStartedAt ?? 0) || a.node.localeCompare(b.node));
  section.timeline = [...ownEvents, ...snapshot.platformEvents.map(timelineEntry)].sort((a, b) => b.at - a.at).slice(0, timelineLength);
  return section;
}

/** The reasons' strings, each sent once: a row carries indexes into this table. */
export class ReasonTable {
  private readonly index = new Map<string, number>();
  readonly list: string[] = [];

  of(reason: string | undefined): number {
    if (reason === undefined) return -1;
    let i = this.index.get(reason);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(reason);
      this.index.set(reason, i);
    }
    return i;
  }
}

export function wireRow(row: NodeRow, cells: string, now: number, reasons: ReasonTable): WireRow {
  return [row.name, cells, row.reasons.map((r) => reasons.of(r)), row.since.map((s) => (s === 0 ? -1 : Math.max(0, Math.round((now - s) / 1000)))), flagsOf(row)];
}

/** One node in full, for the page's detail panel (GET /fleet/node?name=). */
export function nodeDetail(row: NodeRow, now: number, staleMs: number, config: ControllerConfig) {
  const cells = cellsOf(row, now, staleMs);
  return {
    name: row.name,
    conditions: columns.map((type, i) => ({
      type,
      status: row.status[i],
      stale: cells[i] === 'S',
      healthy: healthy(i, row.status[i] ?? '-'),
      reason: row.reasons[i] ?? null,
      message: row.messages[i] ?? null,
      since: row.since[i] ? new Date(row.since[i] as number).toISOString() : null,
      heartbeat: row.heartbeat[i] ? new Date(row.heartbeat[i] as number).toISOString() : null,
    })),
    ladder: row.ladder === undefined ? null : { ...row.ladder, next: nextAction(row.ladder, config) },
    needsHuman: row.needsHuman,
    taints: row.taints,
    doctor: `kubectl nodepulse doctor --node ${row.name}`,
  };
}
