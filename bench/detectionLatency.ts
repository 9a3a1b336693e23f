import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { startAgent, waitForOk } from './support/agentProcess.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { BenchCluster } from './support/benchCluster.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { renderTable, writeResults } from './support/benchOutput.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { NodeWatch } from './support/nodeWatch.js';
import { median, percentile } from './support/stats.js';
import { onlyProbes } from '../test/support/onlyProbes.js';

/**
 * Detection latency against the real API server: a fault is injected into a probe's target
 * (the local DNS server turns to SERVFAIL; the PSI fixture's cpu pressure goes up) and the
 * time until the condition is True is read from a watch on the Node, trial after trial; then
 * the same for recovery. The hysteresis alone puts a fault landing at a random moment of the
 * probe's interval at (threshold - 1) x interval to threshold x interval, median
 * (threshold - 0.5) x interval: what is measured beyond that is the agent's and API's own cost.
 */

const INTERVAL_SECONDS = 1;
const FAILURE_THRESHOLD = 3;
const RECOVERY_THRESHOLD = 2;
const NODE = 'latency-node';

interface Fault {
  name: string;
  condition: string;
  inject: () => void;
  clear: () => void;
}

/** The PSI file the cpu probe reads, written whole (rename) so a sample never sees half of it. */
function writeCpuPressure(procRoot: string, someAvg10: number): void {
  const path = join(procRoot, 'pressure', 'cpu');
  writeFileSync(`${path}.tmp`, `some avg10=${someAvg10.toFixed(2)} avg60=1.00 avg300=1.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`);
  renameSync(`${path}.tmp`, path);
}

function agentConfig(options: { kubeconfig: string; port: number; procRoot: string; sysRoot: string; dnsServer: string }) {
  const hysteresis = { intervalSeconds: INTERVAL_SECONDS, failureThreshold: FAILURE_THRESHOLD, recoveryThreshold: RECOVERY_THRESHOLD };
  return {
    nodeName: NODE,
    kubeconfig: options.kubeconfig,
    procRoot: options.procRoot,
    sysRoot: options.sysRoot,
    server: { address: '127.0.0.1', port: options.port },
    publish: { enabled: true },
    probes: onlyProbes({
      cpu: { ...hysteresis, someAvg10Percent: 50 },
      dns: { ...hysteresis, timeoutMs: 500, checks: [{ name: 'BenchDNS', server: options.dnsServer, query: 'kubernetes.default.svc.cluster.local' }] },
    }),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(fault: Fault, watch: NodeWatch, trials: number, log: (line: string) => void) {
  const detect: number[] = [];
  const recover: number[] = [];
  const timeoutMs = (FAILURE_THRESHOLD + 10) * INTERVAL_SECONDS * 1000;
  for (let trial = 0; trial < trials; trial++) {
    // A random phase against the probe's timer, as a real fault would have.
    await sleep(Math.random() * INTERVAL_SECONDS * 1000);
    const injectedAt = Date.now();
    fault.inject();
    detect.push((await watch.untilCondition(fault.condition, 'True', timeoutMs)) - injectedAt);
    await sleep(Math.random() * INTERVAL_SECONDS * 1000);
    const clearedAt = Date.now();
    fault.clear();
    recover.push((await watch.untilCondition(fault.condition, 'False', timeoutMs)) - clearedAt);
    log(`${fault.name} trial ${trial + 1}/${trials}: detected in ${detect.at(-1)} ms, cleared in ${recover.at(-1)} ms`);
  }
  return { detect, recover };
}

export async function main(options: BenchOptions): Promise<void> {
  const trials = options.trials ?? (options.quick ? 5 : 20);
  const log = (line: string) => process.stderr.write(`detectionLatency: ${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-latency-'));
  const procRoot = join(dir, 'proc');
  mkdirSync(join(procRoot, 'pressure'), { recursive: true });
  writeCpuPressure(procRoot, 1);
  const dns = await TestDnsServer.start({ records: { A: ['10.0.0.1'] } });
  const cluster = await BenchCluster.start(log);
  let watch: NodeWatch | undefined;
  let agent: ReturnType<typeof startAgent> | undefined;
  const results: Record<string, { detect: number[]; recover: number[] }> = {};
  try {
    await cluster.createNode(NODE);
    const port = await freeLoopbackPort();
    agent = startAgent({
      name: 'agent',
      dir,
      nodeFlags: daemonSetNodeFlags(),
      config: agentConfig({ kubeconfig: cluster.agentKubeconfig, port, procRoot, sysRoot: join(dir, 'sys'), dnsServer: dns.address }),
    });
    await waitForOk(`http://127.0.0.1:${port}/readyz`, 60_000, agent);
    watch = await NodeWatch.start(cluster.admin, NODE);
    for (const condition of ['DNSProblem', 'CPUPressureProblem']) await watch.untilCondition(condition, 'False', 30_000);
    const faults: Fault[] = [
      { name: 'DNS server SERVFAIL', condition: 'DNSProblem', inject: () => dns.setMode('servfail'), clear: () => dns.setMode('answer') },
      { name: 'cpu PSI some avg10 1% -> 90%', condition: 'CPUPressureProblem', inject: () => writeCpuPressure(procRoot, 90), clear: () => writeCpuPressure(procRoot, 1) },
    ];
    for (const fault of faults) results[fault.name] = await measure(fault, watch, trials, log);
  } catch (err) {
    if (agent) log(`agent log tail:\n${agent.logTail()}`);
    throw err;
  } finally {
    watch?.stop();
    await agent?.stop();
    await cluster.stop();
    await dns.stop();
  }

  const bounds = (threshold: number) => ({
    floorMs: (threshold - 1) * INTERVAL_SECONDS * 1000,
    idealMedianMs: (threshold - 0.5) * INTERVAL_SECONDS * 1000,
    boundMs: threshold * INTERVAL_SECONDS * 1000,
  });
  const figures = (samples: number[], threshold: number) => {
    const b = bounds(threshold);
    const medianMs = median(samples);
    return { ...b, medianMs, p99Ms: percentile(samples, 99), overheadMs: medianMs - b.idealMedianMs, samplesMs: samples };
  };
  const summary = Object.entries(results).map(([fault, r]) => ({
    fault,
    trials: r.detect.length,
    detect: figures(r.detect, FAILURE_THRESHOLD),
    recover: figures(r.recover, RECOVERY_THRESHOLD),
  }));
  const rows = summary.flatMap((s) =>
    (['detect', 'recover'] as const).map((phase) => {
      const f = s[phase];
      return [`${s.fault}: ${phase === 'detect' ? 'True' : 'back to False'}`, s.trials, `${f.floorMs}-${f.boundMs}`, f.idealMedianMs, f.medianMs, f.p99Ms, f.overheadMs];
    }),
  );
  process.stdout.write(
    `\nDetection latency: fault injected -> condition seen on a watch of the Node at the API server\n` +
      `(interval ${INTERVAL_SECONDS} s, failureThreshold ${FAILURE_THRESHOLD}, recoveryThreshold ${RECOVERY_THRESHOLD}; ` +
      `hysteresis range (threshold-1..threshold) x interval; p99 is nearest-rank, so the largest of ${trials})\n` +
      renderTable(['fault', 'trials', 'range ms', 'ideal median', 'median ms', 'p99 ms', 'median - ideal'], rows),
  );
  const path = writeResults('detectionLatency', {
    benchmark: 'detectionLatency',
    at: new Date().toISOString(),
    machine: machineFacts(),
    intervalSeconds: INTERVAL_SECONDS,
    failureThreshold: FAILURE_THRESHOLD,
    recoveryThreshold: RECOVERY_THRESHOLD,
    faults: summary,
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('detectionLatency', main);
