import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { serializeRemediationState } from '../controller/remediationState.js';
import { waitForOk } from './support/agentProcess.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { BenchCluster } from './support/benchCluster.js';
import { startController } from './support/benchController.js';
import type { BenchProcess } from './support/benchProcess.js';
import { renderTable, writeResults } from './support/benchOutput.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { createNodes, fleetNode, fleetNodeName } from './support/nodeFleet.js';
import { NodeWatch } from './support/nodeWatch.js';
import { readMemory } from './support/processTree.js';
import { median, percentile } from './support/stats.js';

/**
 * The controller at fleet scale on a real kube-apiserver: N plain Node objects shaped like
 * kubelet-registered ones; the controller's RSS, the time to its first full decision pass, and
 * the latency from a Node turning NotReady on the API server to the controller's decision
 * (its state annotation written back), over several trials spread across the fleet.
 */

const STATE_ANNOTATION = 'nodepulse.io/remediation-state';
const NOT_READY_SECONDS = 600;
const REMEDIATE_AFTER_SECONDS = 300;
const MiB = 1024;

/** Defaults, except the safety limits that would hold back the trials' repeated starts. */
const controllerConfig = {
  provider: { type: 'dry-run' },
  detection: { notReadySeconds: NOT_READY_SECONDS, remediateAfterSeconds: REMEDIATE_AFTER_SECONDS, noStatusSeconds: 86_400 },
  safety: { maxInFlight: 10_000, minStartSpacingSeconds: 0, stormCooldownSeconds: 0 },
};

/** A ladder that recovered two hours ago: the first pass resets it, which marks when that pass reached this node. */
function longRecoveredState(now: number): string {
  const hour = 3_600_000;
  return serializeRemediationState({
    step: 'reboot',
    phase: 'recovered',
    attempt: 1,
    sequenceStartedAt: now - 3 * hour,
    stepStartedAt: now - 3 * hour,
    stepEndedAt: now - 3 * hour + 60_000,
    recoveredAt: now - 2 * hour,
  });
}

/** Samples a process's RSS every second until stopped. */
function rssSampler(pid: number) {
  const samples: Array<{ at: number; rssKiB: number; peakKiB: number }> = [];
  const timer = setInterval(() => {
    const m = readMemory(pid);
    if (m) samples.push({ at: Date.now(), rssKiB: m.rssKiB, peakKiB: m.peakRssKiB });
  }, 1000);
  return {
    samples,
    stop: () => clearInterval(timer),
  };
}

/** The controller's memory after a full GC, from the preload's report. */
async function readMemoryReport(path: string, controller: BenchProcess) {
  const deadline = Date.now() + 60_000;
  while (!existsSync(path)) {
    if (Date.now() > deadline || !controller.running) throw new Error(`the controller wrote no memory report:\n${controller.logTail()}`);
    await sleep(200);
  }
  const report = JSON.parse(readFileSync(path, 'utf8')) as { memoryUsage: NodeJS.MemoryUsage; status: string };
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(report.status)?.[1]);
  const mib = (bytes: number) => Number((bytes / 2 ** 20).toFixed(1));
  return {
    rssMiB: Number((kib('VmRSS') / MiB).toFixed(1)),
    anonMiB: Number((kib('RssAnon') / MiB).toFixed(1)),
    heapUsedMiB: mib(report.memoryUsage.heapUsed),
    heapTotalMiB: mib(report.memoryUsage.heapTotal),
    externalMiB: mib(report.memoryUsage.external),
    arrayBuffersMiB: mib(report.memoryUsage.arrayBuffers),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureScale(nodeCount: number, trials: number, log: (line: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), `nodepulse-scale-${nodeCount}-`));
  const cluster = await BenchCluster.start(log);
  let controller: BenchProcess | undefined;
  let sampler: ReturnType<typeof rssSampler> | undefined;
  try {
    const now = Date.now();
    const last = fleetNodeName(nodeCount - 1);
    const nodes = Array.from({ length: nodeCount }, (_, i) => fleetNode(fleetNodeName(i), now));
    nodes[nodeCount - 1] = fleetNode(last, now, { [STATE_ANNOTATION]: longRecoveredState(now) });
    const createMs = await createNodes(cluster.core, nodes);
    log(`${nodeCount} nodes created in ${(createMs / 1000).toFixed(1)} s`);
    const sample = await cluster.core.readNode({ name: fleetNodeName(0) });
    if (!sample.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
      throw new Error('the API server dropped the status of created Nodes; the fleet would not look Ready');
    }

    const lastWatch = await NodeWatch.start(cluster.admin, last);
    const metricsPort = await freeLoopbackPort();
    // Waiting starts before the controller does, so the time is the watch event's, not a poll's.
    const firstPassDone = lastWatch.until('reset by the first pass', (n) => !n.metadata?.annotations?.[STATE_ANNOTATION], 300_000);
    const startedAt = Date.now();
    const reportPath = join(dir, 'memory-report.json');
    controller = startController({
      dir,
      config: controllerConfig,
      kubeconfig: cluster.plane.kubeconfig,
      metricsPort,
      nodeFlags: ['--expose-gc', `--import=${new URL('./support/memoryReportPreload.js', import.meta.url).href}`],
      env: { NODEPULSE_MEMORY_REPORT: reportPath, NODEPULSE_MEMORY_SNAPSHOT: 'no' },
    });
    sampler = rssSampler(controller.pid);
    await waitForOk(`http://127.0.0.1:${metricsPort}/readyz`, 300_000, controller);
    const syncedMs = Date.now() - startedAt;
    const firstPassMs = (await firstPassDone) - startedAt;
    lastWatch.stop();
    log(`${nodeCount} nodes: informer synced after ${syncedMs} ms, first full pass after ${firstPassMs} ms`);

    const latencies: number[] = [];
    for (let k = 0; k < trials; k++) {
      const name = fleetNodeName(Math.floor(((k + 0.5) * (nodeCount - 1)) / trials));
      const watch = await NodeWatch.start(cluster.admin, name);
      await sleep(Math.random() * 1000);
      const turnedAt = Date.now();
      const past = new Date(turnedAt - (NOT_READY_SECONDS + REMEDIATE_AFTER_SECONDS + 60) * 1000);
      await cluster.core.patchNodeStatus(
        {
          name,
          body: {
            status: {
              conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'bench: kubelet stopped posting ready status', lastHeartbeatTime: new Date(turnedAt), lastTransitionTime: past }],
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
      latencies.push((await watch.until('decided on by the controller', (n) => Boolean(n.metadata?.annotations?.[STATE_ANNOTATION]), 60_000)) - turnedAt);
      watch.stop();
    }
    await sleep(10_000);
    sampler.stop();
    const recent = sampler.samples.filter((s) => s.at >= Date.now() - 10_000);
    const steadyRssMiB = Number((median(recent.map((s) => s.rssKiB)) / MiB).toFixed(1));
    const peakRssMiB = Number(((sampler.samples.at(-1)?.peakKiB ?? Number.NaN) / MiB).toFixed(1));
    if (!controller.running) throw new Error(`the controller exited:\n${controller.logTail()}`);
    controller.child.kill('SIGUSR2');
    const afterGc = await readMemoryReport(reportPath, controller);
    return {
      nodes: nodeCount,
      createSeconds: Number((createMs / 1000).toFixed(1)),
      steadyRssMiB,
      peakRssMiB,
      afterGc,
      informerSyncedMs: syncedMs,
      firstFullPassMs: firstPassMs,
      decision: { trials, medianMs: median(latencies), p99Ms: percentile(latencies, 99), maxMs: Math.max(...latencies), samplesMs: latencies },
    };
  } catch (err) {
    if (controller) log(`controller log tail:\n${controller.logTail()}`);
    throw err;
  } finally {
    sampler?.stop();
    await controller?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(options: BenchOptions): Promise<void> {
  const counts = options.nodes ?? (options.quick ? [200] : [1000, 5000]);
  const trials = options.trials ?? (options.quick ? 5 : 20);
  const log = (line: string) => process.stderr.write(`controllerScale: ${line}\n`);
  const scales: Array<Awaited<ReturnType<typeof measureScale>>> = [];
  for (const count of counts) scales.push(await measureScale(count, trials, log));

  const first = scales[0];
  const largest = scales.at(-1);
  const perNode = (figure: (s: (typeof scales)[number]) => number) =>
    first && largest && largest.nodes > first.nodes ? Number((((figure(largest) - figure(first)) * 1024) / (largest.nodes - first.nodes)).toFixed(1)) : undefined;
  const perNodeKiB = { rss: perNode((s) => s.steadyRssMiB), rssAfterGc: perNode((s) => s.afterGc.rssMiB), heapUsedAfterGc: perNode((s) => s.afterGc.heapUsedMiB) };
  process.stdout.write(
    `\nController at scale (plain Node objects on a real kube-apiserver; decision = state annotation written after Ready turns False; p99 nearest-rank of ${trials})\n` +
      renderTable(
        ['nodes', 'RSS MiB', 'peak RSS', 'after GC: RSS', 'heap total', 'heap used', 'ready ms (250 ms polls)', 'first pass ms', 'decision median ms', 'p99 ms'],
        scales.map((s) => [
          s.nodes,
          s.steadyRssMiB,
          s.peakRssMiB,
          s.afterGc.rssMiB,
          s.afterGc.heapTotalMiB,
          s.afterGc.heapUsedMiB,
          s.informerSyncedMs,
          s.firstFullPassMs,
          s.decision.medianMs,
          s.decision.p99Ms,
        ]),
      ) +
      (perNodeKiB.rss === undefined
        ? ''
        : `per additional node: RSS ${perNodeKiB.rss} KiB, RSS after GC ${perNodeKiB.rssAfterGc} KiB, heap used after GC ${perNodeKiB.heapUsedAfterGc} KiB\n`),
  );
  if (largest) {
    process.stdout.write(`target: decision p99 < 1000 ms at ${largest.nodes} nodes: ${largest.decision.p99Ms < 1000 ? 'met' : 'MISSED'} (${largest.decision.p99Ms} ms)\n`);
  }
  const path = writeResults('controllerScale', { benchmark: 'controllerScale', at: new Date().toISOString(), machine: machineFacts(), controllerConfig, perNodeKiB, scales });
  process.stdout.write(`results: ${path}\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('controllerScale', main);
