import type { CoreV1Event, V1Deployment, V1Node, V1Pod } from '@kubernetes/client-node';
import { keys } from '../../common/contract.js';
import type { Evidence } from './report.js';

/**
 * What the doctor reads from the API server, cut to what the six steps look at as each page
 * arrives, so a 5,000-node list never sits in memory whole.
 */
export interface ConditionView {
  type: string;
  status: string;
  reason: string | null;
  message: string | null;
  /** lastTransitionTime, epoch ms. */
  since?: number;
  /** lastHeartbeatTime, epoch ms. */
  heartbeat?: number;
}

export interface NodeView {
  name: string;
  conditions: ConditionView[];
  taints: Array<{ key: string; effect: string }>;
  /** The controller's remediation state annotation, raw. */
  remediationState?: string;
  /** Labelled by the controller when its ladder gave up. */
  needsHuman: boolean;
}

export interface EventView {
  node: string;
  source: string;
  type: string;
  reason: string;
  message: string;
  count: number;
  /** The latest occurrence, epoch ms. */
  at?: number;
}

export interface DeploymentView {
  namespace: string;
  name: string;
  desired: number;
  ready: number;
  available: number;
  updated: number;
}

export interface PodView {
  namespace: string;
  name: string;
  node: string | null;
  ready: boolean;
  restarts: number;
  /** Why its containers last stopped, e.g. `Error (exit 1)`. */
  lastTermination: string | null;
}

export interface ClusterFacts {
  nodes: NodeView[];
  /** Events about Nodes in the window, newest first. */
  events: EventView[];
  /** Absent deployment: direct mode (API Server VNet Integration), no tunnel. */
  konnectivity: { deployment?: DeploymentView; pods: PodView[] };
}

export function epochMs(time: Date | string | undefined | null): number | undefined {
  if (time === undefined || time === null) return undefined;
  const ms = new Date(time).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

export function nodeView(node: V1Node): NodeView {
  const view: NodeView = {
    name: node.metadata?.name ?? '',
    conditions: (node.status?.conditions ?? []).map((c) => {
      const condition: ConditionView = { type: c.type, status: c.status, reason: c.reason ?? null, message: c.message ?? null };
      const since = epochMs(c.lastTransitionTime);
      if (since !== undefined) condition.since = since;
      const heartbeat = epochMs(c.lastHeartbeatTime);
      if (heartbeat !== undefined) condition.heartbeat = heartbeat;
      return condition;
    }),
    taints: (node.spec?.taints ?? []).map((t) => ({ key: t.key, effect: t.effect })),
    needsHuman: node.metadata?.labels?.[keys.needsHuman] === 'true',
  };
  const state = node.metadata?.annotations?.[keys.remediationState];
  if (state !== undefined) view.remediationState = state;
  return view;
}

/** An Event about a Node, or undefined for one about anything else. */
export function eventView(event: CoreV1Event): EventView | undefined {
  const object = event.involvedObject;
  if (object?.kind !== 'Node' || !object.name) return undefined;
  const at = epochMs(event.series?.lastObservedTime) ?? epochMs(event.lastTimestamp) ?? epochMs(event.eventTime) ?? epochMs(event.metadata?.creationTimestamp);
  const view: EventView = {
    node: object.name,
    source: event.source?.component || event.reportingComponent || '',
    type: event.type ?? 'Normal',
    reason: event.reason ?? '',
    message: event.message ?? '',
    count: event.series?.count ?? event.count ?? 1,
  };
  if (at !== undefined) view.at = at;
  return view;
}

export function deploymentView(d: V1Deployment): DeploymentView {
  return {
    namespace: d.metadata?.namespace ?? '',
    name: d.metadata?.name ?? '',
    desired: d.spec?.replicas ?? 1,
    ready: d.status?.readyReplicas ?? 0,
    available: d.status?.availableReplicas ?? 0,
    updated: d.status?.updatedReplicas ?? 0,
  };
}

export function podView(pod: V1Pod): PodView {
  const statuses = pod.status?.containerStatuses ?? [];
  const terminated = statuses.map((s) => s.lastState?.terminated).find((t) => t !== undefined);
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    node: pod.spec?.nodeName ?? null,
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    restarts: statuses.reduce((sum, s) => sum + (s.restartCount ?? 0), 0),
    lastTermination: terminated ? `${terminated.reason ?? 'Terminated'} (exit ${terminated.exitCode})` : null,
  };
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function conditionEvidence(c: ConditionView): Evidence {
  return { kind: 'condition', type: c.type, status: c.status, reason: c.reason, message: c.message, since: iso(c.since), heartbeat: iso(c.heartbeat) };
}

export function eventEvidence(e: EventView): Evidence {
  return { kind: 'event', source: e.source, type: e.type, reason: e.reason, message: e.message, count: e.count, at: iso(e.at) };
}

export function deploymentEvidence(d: DeploymentView): Evidence {
  return { kind: 'deployment', ...d };
}

export function podEvidence(p: PodView): Evidence {
  return { kind: 'pod', ...p };
}

export { iso };
