import type { CoreV1Api, V1Node } from '@kubernetes/client-node';

/** Node names that sort in creation order: scale-00000, scale-00001, ... */
export function fleetNodeName(index: number): string {
  return `scale-${String(index).padStart(5, '0')}`;
}

/**
 * A Node as a kubelet registers it: labels, a Ready condition with the kubelet's pressure
 * conditions, capacity and node info, so the objects the controller caches have a real size.
 */
export function fleetNode(name: string, now: number, annotations: Record<string, string> = {}): V1Node {
  const at = new Date(now);
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: at,
    lastTransitionTime: at,
  });
  return {
    metadata: {
      name,
      annotations,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': 'Standard_D4s_v5',
        'topology.kubernetes.io/region': 'westeurope',
        'topology.kubernetes.io/zone': 'westeurope-1',
        agentpool: 'nodepool1',
      },
    },
    spec: { providerID: `azure:///subscriptions/bench/resourceGroups/bench/providers/Microsoft.Compute/virtualMachineScaleSets/bench/virtualMachines/${name}` },
    status: {
      conditions: [
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
      ],
      capacity: { cpu: '4', memory: '16374100Ki', pods: '110', 'ephemeral-storage': '129886128Ki' },
      allocatable: { cpu: '3860m', memory: '12880212Ki', pods: '110', 'ephemeral-storage': '119703055367' },
      nodeInfo: {
        architecture: 'amd64',
        bootID: `boot-${name}`,
        containerRuntimeVersion: 'containerd://1.7.27',
        kernelVersion: '5.15.0-1089-azure',
        kubeProxyVersion: '',
        kubeletVersion: 'v1.32.6',
        machineID: `machine-${name}`,
        operatingSystem: 'linux',
        osImage: 'Ubuntu 22.04.5 LTS',
        systemUUID: `uuid-${name}`,
      },
    },
  };
}

/** Creates `nodes` with `concurrency` requests in flight; returns how long it took. */
export async function createNodes(core: CoreV1Api, nodes: V1Node[], concurrency = 32): Promise<number> {
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < nodes.length; i = next++) await core.createNode({ body: nodes[i] as V1Node });
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Date.now() - started;
}
