import { CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';

/** kwok manages only nodes carrying this annotation (its `--manage-nodes-with-annotation-selector`). */
export const KWOK_NODE_ANNOTATION = { key: 'kwok.x-k8s.io/node', value: 'fake' } as const;

export function kwokNodeName(index: number): string {
  return `kwok-node-${index}`;
}

/**
 * A Node as kwok's docs describe it: annotated for kwok, labelled like a Linux node, with room
 * for pods. No kwok taint, so DaemonSets land on it the way they land on real nodes.
 */
function kwokNode(name: string): V1Node {
  const resources = { cpu: '32', memory: '256Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value, 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
    },
    status: { capacity: resources, allocatable: resources },
  };
}

/** Creates `count` kwok-managed Nodes named kwok-node-0 ... kwok-node-(count-1). */
export async function createKwokNodes(admin: KubeConfig, count: number): Promise<string[]> {
  const core = admin.makeApiClient(CoreV1Api);
  const names = Array.from({ length: count }, (_, index) => kwokNodeName(index));
  await Promise.all(names.map((name) => core.createNode({ body: kwokNode(name) })));
  return names;
}
