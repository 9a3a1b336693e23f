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
  const slim: V1Node = {
    metadata: {
      name: metadata.name,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      creationTimestamp: metadata.creationTimestamp,
      labels: pick(metadata.labels, keep.labels),
      annotations: pick(metadata.annotations, keep.annotations),
    },
  };
  const spec = node.spec;
  if (spec?.providerID !== undefined || spec?.taints !== undefined) {
    slim.spec = {};
    if (spec.providerID !== undefined) slim.spec.providerID = spec.providerID;
    if (spec.taints !== undefined) slim.spec.taints = spec.taints.map((t) => ({ key: t.key, effect: t.effect, ...(t.value !== undefined ? { value: t.value } : {}) }));
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
