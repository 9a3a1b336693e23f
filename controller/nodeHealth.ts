import type { V1Node } from '@kubernetes/client-node';

/**
 * Turns a Node from the API server into the facts the decision needs, and nothing more. The
 * object comes from outside: every field is checked, and a field that is missing or malformed
 * reads as "unknown" rather than as a value that could trigger a remediation.
 */
export type ReadyStatus = 'True' | 'False' | 'Unknown' | 'Missing';
export type NodeOS = 'linux' | 'windows' | 'unknown';

export interface NodeTaint {
  key: string;
  value?: string;
  effect: string;
}

export interface ObservedCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** When the condition took its current status (epoch ms). */
  since: number;
}

export interface NodeFacts {
  name: string;
  uid: string;
  ready: ReadyStatus;
  /** When Ready took its current status (epoch ms), never later than the observation. */
  readySince: number;
  /** The kubelet's last status report (epoch ms), when the node has one. */
  lastHeartbeatAt?: number;
  /** Whether the node is known to have been Ready at some point since it registered. */
  everReady: boolean;
  taints: NodeTaint[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  os: NodeOS;
  providerID?: string;
  /** Conditions other than Ready (the agent's among them). */
  conditions: ObservedCondition[];
  /** Latest event about this node from another remediator (epoch ms), supplied by the loop. */
  platformRemediationAt?: number;
}

/**
 * What the loop remembers of a node between observations, for the facts a single Node object
 * cannot tell: since when it has seen the current Ready status when the object carries no
 * transition time, and whether it has ever seen the node Ready.
 */
export interface NodeMemory {
  ready: ReadyStatus;
  firstSeenAt: number;
  sawReady: boolean;
}

export type NodeReading =
  | { ok: true; facts: NodeFacts; memory: NodeMemory }
  | { ok: false; error: string };

export interface ReadOptions {
  now: number;
  memory?: NodeMemory;
  registrationGraceMs: number;
  platformRemediationAt?: number;
}

export function readNode(node: V1Node | unknown, options: ReadOptions): NodeReading {
  const { now } = options;
  if (!isRecord(node)) return { ok: false, error: 'node is not an object' };
  const metadata = isRecord(node.metadata) ? node.metadata : {};
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') return { ok: false, error: 'node has no metadata.name' };
  const uid = typeof metadata.uid === 'string' ? metadata.uid : '';
  const spec = isRecord(node.spec) ? node.spec : {};
  const status = isRecord(node.status) ? node.status : {};

  const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isRecord) : [];
  const readyCondition = conditions.find((c) => c.type === 'Ready');
  const ready = readStatus(readyCondition?.status) ?? 'Missing';
  const previous = options.memory?.ready === ready ? options.memory : undefined;
  const transition = notAfter(timestamp(readyCondition?.lastTransitionTime), now);
  // Without a transition time on the object, the first time we saw this status is the best we know.
  const readySince = transition ?? previous?.firstSeenAt ?? now;
  const heartbeat = notAfter(timestamp(readyCondition?.lastHeartbeatTime), now);

  const createdAt = timestamp(metadata.creationTimestamp);
  const sawReady = ready === 'True' || options.memory?.sawReady === true;
  // Ready leaves its registration-time status only by becoming True; a later transition is
  // evidence the node was Ready once. (A never-ready node whose kubelet then died would also
  // transition, to Unknown: the loop's memory is what tells those apart when it was watching.)
  const transitionedAfterRegistration =
    ready !== 'Missing' && createdAt !== undefined && transition !== undefined && transition - createdAt > options.registrationGraceMs;
  const everReady = sawReady || transitionedAfterRegistration;

  const nodeInfo = isRecord(status.nodeInfo) ? status.nodeInfo : {};
  const facts: NodeFacts = {
    name,
    uid,
    ready,
    readySince,
    everReady,
    taints: readTaints(spec.taints),
    labels: stringMap(metadata.labels),
    annotations: stringMap(metadata.annotations),
    os: readOS(nodeInfo.operatingSystem),
    conditions: conditions.flatMap((c) => readCondition(c, now)),
  };
  if (heartbeat !== undefined) facts.lastHeartbeatAt = heartbeat;
  if (typeof spec.providerID === 'string' && spec.providerID !== '') facts.providerID = spec.providerID;
  if (options.platformRemediationAt !== undefined) facts.platformRemediationAt = options.platformRemediationAt;
  return {
    ok: true,
    facts,
    memory: { ready, firstSeenAt: previous?.firstSeenAt ?? readySince, sawReady },
  };
}

function readCondition(c: Record<string, unknown>, now: number): ObservedCondition[] {
  if (typeof c.type !== 'string' || c.type === 'Ready') return [];
  const status = readStatus(c.status);
  if (status === undefined) return [];
  // A condition without a usable transition time counts as just set: its duration starts now.
  return [{ type: c.type, status, since: notAfter(timestamp(c.lastTransitionTime), now) ?? now }];
}

function readTaints(value: unknown): NodeTaint[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isRecord).flatMap((t) => {
    if (typeof t.key !== 'string' || typeof t.effect !== 'string') return [];
    const taint: NodeTaint = { key: t.key, effect: t.effect };
    if (typeof t.value === 'string') taint.value = t.value;
    return [taint];
  });
}

function readOS(value: unknown): NodeOS {
  if (value === 'linux' || value === 'windows') return value;
  return 'unknown';
}

function readStatus(value: unknown): 'True' | 'False' | 'Unknown' | undefined {
  return value === 'True' || value === 'False' || value === 'Unknown' ? value : undefined;
}

/** Accepts what client-node hands over (Date) and what raw JSON carries (RFC 3339 string). */
function timestamp(value: unknown): number | undefined {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** A time from a node's clock that lies in our future is clamped to now (clock skew). */
function notAfter(ms: number | undefined, now: number): number | undefined {
  return ms === undefined ? undefined : Math.min(ms, now);
}

function stringMap(value: unknown): Record<string, string> {
  if (!isRecord(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
