import type { V1Node, V1NodeCondition } from '@kubernetes/client-node';

/**
 * What the controller's Node cache keeps of each Node, cut as the object arrives (like
 * controller-runtime's cache transforms): only the fields decisions and writes read. A
 * kubelet-registered Node carries managed fields, images, addresses, capacity, daemon
 * endpoints and a dozen conditions; none of it is retained. The result keeps the V1Node
 * shape, so the same reader (nodeHealth.ts) and writers (nodeWrites.ts) serve both.
 *
 * Kept: name, uid, resourceVersion, creationTimestamp; the labels and annotations named in
 * `keep` (ours and the rules'); every taint (a taint write replaces the whole list);
 * providerID; the Ready condition and the watched ones (status and times, no reason or
 * message); nodeInfo's operatingSystem and bootID.
 */
export interface SlimKeep {
  labels: ReadonlySet<string>;
  annotations: ReadonlySet<string>;
  /** Condition types besides Ready. */
  conditions: ReadonlySet<string>;
}

export function slimNode(node: V1Node, keep: SlimKeep): V1Node {
  const metadata = node.metadata ?? {};
  const slimMetadata: NonNullable<V1Node['metadata']> = { name: metadata.name };
  if (metadata.uid !== undefined) slimMetadata.uid = metadata.uid;
  if (metadata.resourceVersion !== undefined) slimMetadata.resourceVersion = metadata.resourceVersion;
  if (metadata.creationTimestamp !== undefined) slimMetadata.creationTimestamp = metadata.creationTimestamp;
  const labels = pick(metadata.labels, keep.labels);
  if (labels) slimMetadata.labels = labels;
  const annotations = pick(metadata.annotations, keep.annotations);
  if (annotations) slimMetadata.annotations = annotations;
  const slim: V1Node = { metadata: slimMetadata };
  const providerID = node.spec?.providerID;
  const taints = node.spec?.taints ?? [];
  if (providerID !== undefined || taints.length > 0) {
    slim.spec = {};
    if (providerID !== undefined) slim.spec.providerID = providerID;
    if (taints.length > 0) slim.spec.taints = taints.map((t) => ({ key: t.key, effect: t.effect, ...(t.value !== undefined ? { value: t.value } : {}) }));
  }
  const status = node.status;
  if (status) {
    const conditions = (status.conditions ?? []).filter((c) => c.type === 'Ready' || keep.conditions.has(c.type)).map(slimCondition);
    slim.status = { conditions };
    const info = status.nodeInfo;
    if (info) slim.status.nodeInfo = { operatingSystem: info.operatingSystem, bootID: info.bootID } as NonNullable<V1Node['status']>['nodeInfo'];
  }
  return slim;
}

function slimCondition(c: V1NodeCondition): V1NodeCondition {
  const out: V1NodeCondition = { type: c.type, status: c.status };
  if (c.lastTransitionTime !== undefined) out.lastTransitionTime = c.lastTransitionTime;
  if (c.lastHeartbeatTime !== undefined) out.lastHeartbeatTime = c.lastHeartbeatTime;
  return out;
}

function pick(map: Record<string, string> | undefined, keys: ReadonlySet<string>): Record<string, string> | undefined {
  if (!map) return undefined;
  let out: Record<string, string> | undefined;
  for (const key of keys) {
    const value = map[key];
    if (value !== undefined) (out ??= {})[key] = value;
  }
  return out;
}
