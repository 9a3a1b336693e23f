import { readFileSync } from 'node:fs';
import type { ClusterAccess } from './clusterAccess.js';
import type { RealNode } from './realNode.js';

/** A container's memory as the kubelet accounts it (cgroup, via /stats/summary) beside its main process's RSS. */
export interface ContainerMemory {
  /** What the kubelet evicts and OOM-reasons on: usage minus inactive file pages. */
  workingSetBytes: number;
  /** The cgroup's whole charge (memory.usage_in_bytes), page cache included. */
  usageBytes: number;
  /** The cgroup's anonymous and swap-cache memory (memory.stat rss). */
  rssBytes: number;
  /** VmRSS of the container's main process, as the footprint benchmark measures processes. */
  processRssBytes: number;
}

interface Summary {
  pods?: Array<{
    podRef: { name: string; namespace: string };
    containers?: Array<{ name: string; memory?: { workingSetBytes?: number; usageBytes?: number; rssBytes?: number } }>;
  }>;
}

/** VmRSS of the oldest process of the node whose command line contains `commandPart`. */
function processRss(node: RealNode, commandPart: string): number {
  const matches = node.namespaces.processes().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(commandPart);
    } catch {
      return false;
    }
  });
  const main = Math.min(...matches);
  if (!Number.isFinite(main)) throw new Error(`no process on ${node.name} runs ${commandPart}`);
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${main}/status`, 'utf8'))?.[1];
  if (!kib) throw new Error(`/proc/${main}/status has no VmRSS`);
  return Number(kib) * 1024;
}

/**
 * Reads the kubelet's summary API through the API server (`nodes/<node>/proxy/stats/summary`,
 * the path `kubectl top` takes) for one container, and its main process's RSS from /proc.
 */
export async function containerMemory(
  cluster: ClusterAccess,
  node: RealNode,
  pod: { namespace: string; name: string },
  container: string,
  commandPart: string,
): Promise<ContainerMemory> {
  const summary = JSON.parse(await cluster.kubectl(['get', '--raw', `/api/v1/nodes/${node.name}/proxy/stats/summary`])) as Summary;
  const entry = summary.pods?.find((p) => p.podRef.name === pod.name && p.podRef.namespace === pod.namespace);
  const memory = entry?.containers?.find((c) => c.name === container)?.memory;
  if (memory?.workingSetBytes === undefined || memory.usageBytes === undefined) {
    throw new Error(`the kubelet's summary has no memory figures for ${pod.namespace}/${pod.name} ${container} yet`);
  }
  return {
    workingSetBytes: memory.workingSetBytes,
    usageBytes: memory.usageBytes,
    rssBytes: memory.rssBytes ?? 0,
    processRssBytes: processRss(node, commandPart),
  };
}
