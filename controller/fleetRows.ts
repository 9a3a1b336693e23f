import type { V1Node } from '@kubernetes/client-node';
import { foreignTaints, keys, ownedConditionTypes } from '../common/contract.js';
import { parseRemediationState, type StoredState } from './remediationState.js';

/**
 * The fleet page's own compact copy of every Node: one row per node with a status letter, an
 * interned reason, the transition and heartbeat times per column, and the message only where
 * the cell is not healthy (a healthy agent message is figures nobody reads on a grid). Fed
 * from the Node informer as objects arrive, so the page costs the controller no API request
 * and its cache (slim, for decisions) nothing; about 0.3 KiB a node.
 */
export const columns: readonly string[] = ['Ready', ...ownedConditionTypes];

/** Per cell: T(rue), F(alse), U(nknown), '-' (absent). Stale agent cells (S) are judged when a view is built. */
export type CellStatus = 'T' | 'F' | 'U' | '-';

export interface NodeRow {
  name: string;
  status: CellStatus[];
  reasons: Array<string | undefined>;
  /** lastTransitionTime per column, epoch ms (0: none). */
  since: number[];
  /** lastHeartbeatTime per column, epoch ms (0: none). */
  heartbeat: number[];
  /** Messages of the cells that are not healthy. */
  messages: Array<string | undefined>;
  ladder: StoredState;
  needsHuman: boolean;
  /** Shutdown, being deleted by the autoscaler, quarantined by us. */
  taints: { shutdown: boolean; toBeDeleted: boolean; quarantined: boolean };
  /** Bumped on every change, so a view sends a row only when it moved. */
  version: number;
}

/** Healthy: Ready True, an agent condition False. */
export function healthy(column: number, status: CellStatus): boolean {
  return column === 0 ? status === 'T' : status === 'F';
}

function epochMs(time: Date | string | undefined): number {
  if (time === undefined) return 0;
  const ms = new Date(time).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}

export class FleetRows {
  private readonly rows = new Map<string, NodeRow>();
  /** One instance per distinct reason, so 5,000 nodes share a handful of strings. */
  private readonly interned = new Map<string, string>();

  constructor(
    private readonly stateAnnotation: string = keys.remediationState,
    private readonly quarantineTaint: string = keys.quarantineTaint,
    private readonly needsHumanLabel: string = keys.needsHuman,
  ) {}

  observe(node: V1Node): void {
    const name = node.metadata?.name;
    if (!name) return;
    const byType = new Map((node.status?.conditions ?? []).map((c) => [c.type, c]));
    const row: NodeRow = {
      name,
      status: [],
      reasons: [],
      since: [],
      heartbeat: [],
      messages: [],
      ladder: parseRemediationState(node.metadata?.annotations?.[this.stateAnnotation]),
      needsHuman: node.metadata?.labels?.[this.needsHumanLabel] === 'true',
      taints: { shutdown: false, toBeDeleted: false, quarantined: false },
      version: (this.rows.get(name)?.version ?? 0) + 1,
    };
    columns.forEach((type, i) => {
      const c = byType.get(type);
      const status: CellStatus = c?.status === 'True' ? 'T' : c?.status === 'False' ? 'F' : c ? 'U' : '-';
      row.status.push(status);
      row.reasons.push(c?.reason ? this.intern(c.reason) : undefined);
      row.since.push(epochMs(c?.lastTransitionTime));
      row.heartbeat.push(epochMs(c?.lastHeartbeatTime));
      row.messages.push(c && !healthy(i, status) ? c.message : undefined);
    });
    for (const t of node.spec?.taints ?? []) {
      if (t.key === foreignTaints.shutdown) row.taints.shutdown = true;
      if (t.key === foreignTaints.toBeDeleted) row.taints.toBeDeleted = true;
      if (t.key === this.quarantineTaint) row.taints.quarantined = true;
    }
    this.rows.set(name, row);
  }

  /** Drops rows of nodes the cache no longer holds. */
  retain(isCached: (name: string) => boolean): string[] {
    const gone: string[] = [];
    for (const name of this.rows.keys()) if (!isCached(name)) gone.push(name);
    for (const name of gone) this.rows.delete(name);
    return gone;
  }

  get(name: string): NodeRow | undefined {
    return this.rows.get(name);
  }

  values(): IterableIterator<NodeRow> {
    return this.rows.values();
  }

  get size(): number {
    return this.rows.size;
  }

  private intern(reason: string): string {
    const known = this.interned.get(reason);
    if (known !== undefined) return known;
    this.interned.set(reason, reason);
    return reason;
  }
}
