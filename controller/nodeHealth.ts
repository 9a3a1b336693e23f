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
  /**
   * Whether the node is known to have been Ready at some point: Ready now, seen Ready by this
   * replica, or marked so on the Node (the `readySeen` annotation, written when a node seen
   * Ready first fails). Never inferred from timestamps, which depend on when the kubelet
   * happened to post its first status.
   */
  everReady: boolean;
  taints: NodeTaint[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  os: NodeOS;
  providerID?: string;
  /** status.nodeInfo.bootID: changes on every boot. */
  bootID?: string;
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
  platformRemediationAt?: number;
  /** Annotation whose presence says the node was seen Ready once (keys.readySeen). */
  readySeenAnnotation?: string;
  /**
   * The agent's heartbeat period: a condition not re-stated (lastHeartbeatTime) for two of
   * these reads as Unknown, because whoever wrote it (a dead agent) no longer vouches for it.
   */
  conditionHeartbeatMs?: number;
  /**
   * End of a span in which this controller could not see the API server (epoch ms): nodes
   * could not report then either, so their heartbeat clocks restart from here.
   */
  blindUntil?: number;
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
  const heartbeat = afterBlindSpan(notAfter(timestamp(readyCondition?.lastHeartbeatTime), now), options.blindUntil);

  const sawReady = ready === 'True' || options.memory?.sawReady === true;
  const annotations = stringMap(metadata.annotations);
  const everReady = sawReady || (options.readySeenAnnotation !== undefined && annotations[options.readySeenAnnotation] !== undefined);

  const nodeInfo = isRecord(status.nodeInfo) ? status.nodeInfo : {};
  const labels = stringMap(metadata.labels);
  const facts: NodeFacts = {
    name,
    uid,
    ready,
    readySince,
    everReady,
    taints: readTaints(spec.taints),
    labels,
    annotations,
    os: readOS(nodeInfo.operatingSystem, labels[osLabel]),
    conditions: conditions.flatMap((c) => readCondition(c, options)),
  };
  if (typeof nodeInfo.bootID === 'string' && nodeInfo.bootID !== '') facts.bootID = nodeInfo.bootID;
  if (heartbeat !== undefined) facts.lastHeartbeatAt = heartbeat;
  if (typeof spec.providerID === 'string' && spec.providerID !== '') facts.providerID = spec.providerID;
  if (options.platformRemediationAt !== undefined) facts.platformRemediationAt = options.platformRemediationAt;
  return {
    ok: true,
    facts,
    memory: { ready, firstSeenAt: previous?.firstSeenAt ?? readySince, sawReady },
  };
}

function readCondition(c: Record<string, unknown>, options: ReadOptions): ObservedCondition[] {
  const { now } = options;
  if (typeof c.type !== 'string' || c.type === 'Ready') return [];
  let status = readStatus(c.status);
  if (status === undefined) return [];
  // A condition without a usable transition time counts as just set: its duration starts now.
  const since = notAfter(timestamp(c.lastTransitionTime), now) ?? now;
  const heartbeat = afterBlindSpan(notAfter(timestamp(c.lastHeartbeatTime), now), options.blindUntil);
  if (options.conditionHeartbeatMs !== undefined && heartbeat !== undefined && now - heartbeat > 2 * options.conditionHeartbeatMs) {
    status = 'Unknown';
  }
  return [{ type: c.type, status, since }];
}

/** A heartbeat from before our blind span is as good as one at its end: nobody could write during it. */
function afterBlindSpan(ms: number | undefined, blindUntil: number | undefined): number | undefined {
  if (ms === undefined || blindUntil === undefined) return ms;
  return Math.max(ms, blindUntil);
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

/** The well-known label the kubelet sets from the same source as nodeInfo.operatingSystem. */
const osLabel = 'kubernetes.io/os';

function readOS(value: unknown, label: string | undefined): NodeOS {
  if (value === 'linux' || value === 'windows') return value;
  if (label === 'linux' || label === 'windows') return label;
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
