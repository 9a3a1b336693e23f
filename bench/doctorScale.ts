import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { AppsV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { nodeEvent } from '../common/kube/nodeEvent.js';
import { BenchCluster } from './support/benchCluster.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { renderTable, repoRoot, writeResults } from './support/benchOutput.js';
import { machineFacts } from './support/machine.js';
import { agentFleetNode, createNodes, fleetNodeName } from './support/nodeFleet.js';
import { readMemory } from './support/processTree.js';
import { median } from './support/stats.js';

/**
 * `nodepulse doctor` over a large simulated fleet on the test control plane: Nodes shaped as
 * kubelets register them, each with the eight agent conditions, 1% of them with a throttled
 * disk and 0.4% NotReady, one Event per five nodes, the konnectivity-agent Deployment. The
 * built CLI runs as an operator runs it (a fresh process per trial, admin kubeconfig):
 * wall time from spawn to exit, peak RSS, and the LIST requests the API server counted.
 */
const cli = join(repoRoot(), 'dist/tools/nodepulse.js');

interface Trial {
  wallMs: number;
  peakRssMiB: number;
  exitCode: number | null;
  bytes: number;
}

/** One doctor run in its own process; peak RSS is VmHWM, read until the process is gone. */
function runDoctor(kubeconfig: string, args: string[]): Promise<Trial> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [cli, 'doctor', ...args], { env: { PATH: process.env.PATH ?? '', KUBECONFIG: kubeconfig, HOME: '/nonexistent' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let peakKiB = 0;
    let bytes = 0;
    let stderr = '';
    const sample = setInterval(() => {
      const memory = child.pid === undefined ? undefined : readMemory(child.pid);
      if (memory) peakKiB = Math.max(peakKiB, memory.peakRssKiB);
    }, 20);
    child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (exitCode) => {
      clearInterval(sample);
      if (exitCode !== 0 && exitCode !== 1) reject(new Error(`doctor exited ${exitCode}: ${stderr}`));
      else resolve({ wallMs: performance.now() - started, peakRssMiB: peakKiB / 1024, exitCode, bytes });
    });
  });
}

async function nodeLists(cluster: BenchCluster): Promise<number> {
  const text = await cluster.plane.kubectl(['get', '--raw', '/metrics']);
  return text
    .split('\n')
    .filter((l) => l.startsWith('apiserver_request_total{') && l.includes('resource="nodes"') && l.includes('verb="LIST"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function measure(nodeCount: number, trials: number, log: (line: string) => void) {
  const cluster = await BenchCluster.start(log);
  try {
    const now = Date.now();
    const createMs = await createNodes(
      cluster.core,
      Array.from({ length: nodeCount }, (_, i) => agentFleetNode(i, now)),
    );
    log(`${nodeCount} nodes created in ${(createMs / 1000).toFixed(1)} s`);
    const events: CoreV1Event[] = Array.from({ length: Math.floor(nodeCount / 5) }, (_, i) =>
      nodeEvent({ node: { name: fleetNodeName(i * 5) }, type: 'Warning', reason: 'ClusterDNSTimeout', message: 'ClusterDNS timed out after 2000 ms', component: 'nodepulse-agent', host: fleetNodeName(i * 5), now: new Date(now - 60_000) }),
    );
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let i = next++; i < events.length; i = next++) await cluster.core.createNamespacedEvent({ namespace: 'default', body: events[i] as CoreV1Event });
    }));
    const apps = cluster.admin.makeApiClient(AppsV1Api);
    const labels = { app: 'konnectivity-agent' };
    await apps.createNamespacedDeployment({
      namespace: 'kube-system',
      body: { metadata: { name: 'konnectivity-agent' }, spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'agent', image: 'konnectivity-agent:bench' }] } } } },
    });
    const kubeconfig = cluster.plane.kubeconfig;
    const modes: Array<[string, string[]]> = [
      ['summary (text)', []],
      ['-o json', ['-o', 'json']],
      ['--verbose', ['--verbose']],
      ['--node (one node)', ['--node', fleetNodeName(7)]],
    ];
    const rows = [];
    for (const [mode, args] of modes) {
      const listsBefore = await nodeLists(cluster);
      const runs: Trial[] = [];
      for (let t = 0; t < trials; t++) runs.push(await runDoctor(kubeconfig, args));
      const lists = ((await nodeLists(cluster)) - listsBefore) / trials;
      rows.push({
        mode,
        nodes: nodeCount,
        events: events.length,
        wallSecondsMedian: Number((median(runs.map((r) => r.wallMs)) / 1000).toFixed(2)),
        wallSecondsMax: Number((Math.max(...runs.map((r) => r.wallMs)) / 1000).toFixed(2)),
        peakRssMiB: Math.round(Math.max(...runs.map((r) => r.peakRssMiB))),
        nodeListRequests: lists,
        outputKiB: Math.round((runs[0]?.bytes ?? 0) / 1024),
        exitCode: runs[0]?.exitCode,
      });
      log(`${mode}: ${JSON.stringify(rows.at(-1))}`);
    }
    return rows;
  } finally {
    await cluster.plane.stop();
  }
}

export async function main(options: BenchOptions): Promise<void> {
  const counts = options.nodes ?? (options.quick ? [500] : [5000]);
  const trials = options.trials ?? (options.quick ? 1 : 5);
  const log = (line: string) => process.stderr.write(`[doctorScale] ${line}\n`);
  const rows = [];
  for (const n of counts) rows.push(...(await measure(n, trials, log)));
  process.stdout.write(
    renderTable(
      ['mode', 'nodes', 'events', 'wall s (median)', 'wall s (max)', 'peak RSS MiB', 'node LISTs', 'output KiB'],
      rows.map((r) => [r.mode, r.nodes, r.events, r.wallSecondsMedian, r.wallSecondsMax, r.peakRssMiB, r.nodeListRequests, r.outputKiB]),
    ),
  );
  const path = writeResults('doctorScale', { at: new Date().toISOString(), machine: machineFacts(), trials, rows });
  process.stdout.write(`results in ${path}\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('doctorScale', main);
