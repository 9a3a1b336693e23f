import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { repoRoot } from '../../test/cluster/binaries.js';
import { startNodeCluster } from '../../test/cluster/nodeCluster.js';
import { type ContainerMemory, containerMemory } from '../../test/cluster/podMemory.js';

const MiB = 1024 * 1024;

/** The agent container on a real node, as the kubelet accounts it, beside its process's RSS (MiB, medians over the second half). */
export interface RealNodeAgentFootprint {
  samples: number;
  workingSetMiB: number;
  cgroupUsageMiB: number;
  cgroupRssMiB: number;
  processRssMiB: number;
  requestMiB: number;
  limitMiB: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return Number((value / MiB).toFixed(1));
}

/**
 * Runs the DaemonSet as shipped (the generic overlay, with only the test node's image and API
 * server address: test/manifests/on-test-node) on a real kubelet + containerd node and samples
 * the agent container's memory every `intervalSeconds` from the kubelet's summary API.
 */
export async function realNodeAgentFootprint(durationSeconds: number, log: (line: string) => void, intervalSeconds = 10): Promise<RealNodeAgentFootprint> {
  const cluster = await startNodeCluster({ kwokNodes: 1, log });
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-footprint-node-'));
  try {
    const dns = await cluster.node.startDnsServer();
    try {
      const manifests = join(repoRoot(), 'manifests', 'overlays', 'generic');
      const component = join(repoRoot(), 'test', 'manifests', 'on-test-node');
      writeFileSync(join(dir, 'kustomization.yaml'), stringify({ resources: [relative(dir, manifests)], components: [relative(dir, component)] }));
      await cluster.plane.kubectl(['apply', '-k', dir]);
      await cluster.plane.kubectl(['rollout', 'status', 'daemonset/nodepulse-agent', '-n', 'nodepulse', '--timeout=240s'], { timeoutMs: 260_000 });
      const pods = JSON.parse(await cluster.plane.kubectl(['get', 'pods', '-n', 'nodepulse', '-l', 'app.kubernetes.io/name=nodepulse-agent', '-o', 'json'])) as { items: V1Pod[] };
      const pod = pods.items.find((p) => p.spec?.nodeName === cluster.node.name);
      if (!pod?.metadata?.name) throw new Error(`no agent pod on ${cluster.node.name}`);
      const resources = pod.spec?.containers[0]?.resources ?? {};
      log(`sampling the agent container on ${cluster.node.name} for ${durationSeconds} s`);
      const samples: ContainerMemory[] = [];
      const until = Date.now() + durationSeconds * 1000;
      while (Date.now() < until) {
        await new Promise((done) => setTimeout(done, intervalSeconds * 1000));
        const sample = await containerMemory(cluster.plane, cluster.node, { namespace: 'nodepulse', name: pod.metadata.name }, 'agent', '/app/dist/agent/cli.js').catch(() => undefined);
        if (sample) samples.push(sample);
      }
      const steady = samples.slice(Math.floor(samples.length / 2));
      if (steady.length === 0) throw new Error("the kubelet's summary API gave no memory figures for the agent container");
      return {
        samples: samples.length,
        workingSetMiB: median(steady.map((s) => s.workingSetBytes)),
        cgroupUsageMiB: median(steady.map((s) => s.usageBytes)),
        cgroupRssMiB: median(steady.map((s) => s.rssBytes)),
        processRssMiB: median(steady.map((s) => s.processRssBytes)),
        requestMiB: Number.parseInt(String(resources.requests?.memory), 10),
        limitMiB: Number.parseInt(String(resources.limits?.memory), 10),
      };
    } finally {
      dns.stop();
    }
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
