import type { V1Node, V1NodeCondition, V1Taint } from '@kubernetes/client-node';

/** Builds Node objects the way the API server returns them, for controller tests. */
export interface NodeShape {
  name?: string;
  uid?: string;
  /** Ready status; `null` leaves the condition out (a node that never reported). */
  ready?: 'True' | 'False' | 'Unknown' | null;
  readySince?: number;
  heartbeatAt?: number;
  createdAt?: number;
  taints?: V1Taint[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  os?: string;
  providerID?: string;
  /** Other conditions: type -> [status, since]. */
  conditions?: Record<string, ['True' | 'False' | 'Unknown', number]>;
  resourceVersion?: string;
}

export function makeNode(shape: NodeShape): V1Node {
  const created = shape.createdAt ?? Date.parse('2025-12-01T00:00:00Z');
  const conditions: V1NodeCondition[] = [];
  if (shape.ready !== null) {
    const since = shape.readySince ?? created + 30_000;
    conditions.push({
      type: 'Ready',
      status: shape.ready ?? 'True',
      reason: shape.ready === 'True' || shape.ready === undefined ? 'KubeletReady' : 'KubeletNotReady',
      lastTransitionTime: new Date(since),
      lastHeartbeatTime: new Date(shape.heartbeatAt ?? since),
    });
  }
  for (const [type, [status, since]] of Object.entries(shape.conditions ?? {})) {
    conditions.push({ type, status, reason: type, lastTransitionTime: new Date(since), lastHeartbeatTime: new Date(since) });
  }
  const node: V1Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: shape.name ?? 'aks-nodepool1-12345678-vmss000000',
      uid: shape.uid ?? `uid-${shape.name ?? 'node'}`,
      creationTimestamp: new Date(created),
      labels: shape.labels ?? {},
      annotations: shape.annotations ?? {},
    },
    spec: { taints: shape.taints ?? [] },
    status: {
      conditions,
      nodeInfo: {
        operatingSystem: shape.os ?? 'linux',
        architecture: 'amd64',
        bootID: 'boot',
        containerRuntimeVersion: 'containerd://1.7.0',
        kernelVersion: '6.8.0',
        kubeProxyVersion: '',
        kubeletVersion: 'v1.34.0',
        machineID: 'machine',
        osImage: 'Ubuntu 24.04',
        systemUUID: 'uuid',
      },
    },
  };
  if (shape.providerID) node.spec = { ...node.spec, providerID: shape.providerID };
  if (shape.resourceVersion) node.metadata = { ...node.metadata, resourceVersion: shape.resourceVersion };
  return node;
}
