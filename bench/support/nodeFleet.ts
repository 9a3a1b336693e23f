import type { CoreV1Api, V1Node, V1NodeCondition } from '@kubernetes/client-node';
import { probeReasons } from '../../common/contract.js';

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

function agentConditions(i: number, now: number): V1NodeCondition[] {
  const at = new Date(now - 600_000);
  const c = (type: string, status: string, reason: string, message: string): V1NodeCondition => ({ type, status, reason, message, lastHeartbeatTime: new Date(now), lastTransitionTime: at });
  const throttled = i % 100 === 7;
  return [
    c('CPUPressureProblem', 'False', probeReasons.cpu.normal, 'cpu some avg10=3.10% (threshold 75%)'),
    c('MemoryPressureProblem', 'False', probeReasons.memory.normal, 'MemAvailable 9120 MiB (57.0% of 16000 MiB), memory some avg10=0.00% full avg10=0.00%'),
    c('PIDPressureProblem', 'False', probeReasons.pid.normal, '412 tasks of pid_max 4194304 (0.0%), threads-max 126000 (0.3%)'),
    throttled
      ? c('DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'io some avg10=61.20% on sda 498 IOPS of its 500 IOPS cap (99.6%)')
      : c('DiskIOProblem', 'False', probeReasons.diskIO.normal, 'io some avg10=0.40% full avg10=0.10%; busiest sda 35 IOPS 2.1 MB/s 4.0% util'),
    c('DiskSpaceProblem', 'False', probeReasons.diskSpace.normal, '/ 41.0% used, inodes 6.0%; /var/lib/kubelet 41.0%; /var/lib/containerd 41.0%'),
    c('DNSProblem', 'False', probeReasons.dns.healthy, '3 DNS check(s) answered: Upstream 2 ms (20.70.246.20); ClusterDNS 1 ms (10.0.0.1); APIServerDNS 1 ms (10.224.0.4)'),
    c('KubeletProblem', 'False', probeReasons.kubelet.healthy, 'http://127.0.0.1:10248/healthz answered ok in 1 ms'),
    c('KonnectivityProblem', 'False', probeReasons.konnectivity.healthy, 'API server -> pod nodepulse/nodepulse-agent-x:20258 answered in 14ms; konnectivity-agent 2/2 ready'),
  ];
}

/**
 * A fleet node as an agent with every probe on leaves it: the kubelet's conditions plus the
 * eight agent conditions, 1% with a throttled disk (i % 100 == 7) and 0.4% NotReady (i % 250 == 3).
 */
export function agentFleetNode(i: number, now: number): V1Node {
  const node = fleetNode(fleetNodeName(i), now);
  const kubelet = (node.status?.conditions ?? []).map((c) => (c.type === 'Ready' && i % 250 === 3 ? { ...c, status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' } : c));
  node.status = { ...node.status, conditions: [...kubelet, ...agentConditions(i, now)] };
  return node;
}
