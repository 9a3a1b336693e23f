import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { startAgent, waitForOk } from './support/agentProcess.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { BenchCluster } from './support/benchCluster.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { renderTable, writeResults } from './support/benchOutput.js';
import { isRoot, KmsgWriter, nonceRuleFile } from './support/kernelLog.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { loadAverages } from './support/machineLoad.js';
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
 * As root, a kernel-log row too: a line written to the real /dev/kmsg matching a permanent rule
 * of this run's own rule file (the nonce keeps every other reader's rules out of it) -> its
 * condition True on the API server.
 */

const INTERVAL_SECONDS = 1;
const KMSG_FAULT = 'line written to /dev/kmsg';
/** Issue 16: write -> condition on the API server. */
const KMSG_P99_TARGET_MS = 1000;
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

/** The kernel-log row's rule: a permanent condition of this run's own rule file, cleared by its clearAfterSeconds. */
const KMSG_CONDITION = 'BenchKernelLogProblem';
const KMSG_CLEAR_AFTER_SECONDS = 2;

function agentConfig(options: { kubeconfig: string; port: number; procRoot: string; sysRoot: string; dnsServer: string; kmsgRuleFile?: string }) {
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
    // The kernel monitor as shipped (built-in rules on the real /dev/kmsg) plus this run's rule file.
    ...(options.kmsgRuleFile ? { monitors: { kernel: { enabled: true, ruleFiles: [options.kmsgRuleFile] } } } : {}),
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

/**
 * A line written to the real /dev/kmsg -> the permanent rule's condition True on the API
 * server; then, with no further line, back to False after clearAfterSeconds (timed from the
 * write). One write every few seconds, so printk_devkmsg's ratelimit (10 per 5 s) never drops one.
 */
async function measureKmsg(linePrefix: string, watch: NodeWatch, trials: number, log: (line: string) => void) {
  const detect: number[] = [];
  const recover: number[] = [];
  const writer = new KmsgWriter();
  try {
    for (let trial = 0; trial < trials; trial++) {
      await sleep(Math.random() * 1000);
      const writtenAt = Date.now();
      writer.write(`${linePrefix} fault ${trial}`);
      detect.push((await watch.untilCondition(KMSG_CONDITION, 'True', 10_000)) - writtenAt);
      recover.push((await watch.untilCondition(KMSG_CONDITION, 'False', (KMSG_CLEAR_AFTER_SECONDS + 10) * 1000)) - writtenAt);
      log(`kernel log line trial ${trial + 1}/${trials}: condition True in ${detect.at(-1)} ms, cleared ${recover.at(-1)} ms after the write`);
    }
  } finally {
    writer.close();
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
  // The kernel monitor dates records and ties them to a boot from the real ones.
  mkdirSync(join(procRoot, 'sys', 'kernel', 'random'), { recursive: true });
  symlinkSync('/proc/uptime', join(procRoot, 'uptime'));
  symlinkSync('/proc/sys/kernel/random/boot_id', join(procRoot, 'sys', 'kernel', 'random', 'boot_id'));
  // The real kernel log takes root to write; elsewhere that row is left out (said below).
  const kmsg = isRoot()
    ? nonceRuleFile(dir, {
        nonce: randomBytes(4).toString('hex'),
        source: 'bench-latency-monitor',
        condition: { type: KMSG_CONDITION, healthyReason: 'NoBenchKernelLogLine', reason: 'BenchKernelLogLine', word: 'fault', clearAfterSeconds: KMSG_CLEAR_AFTER_SECONDS },
      })
    : undefined;
  const dns = await TestDnsServer.start({ records: { A: ['10.0.0.1'] } });
  const cluster = await BenchCluster.start(log);
  let watch: NodeWatch | undefined;
  let agent: ReturnType<typeof startAgent> | undefined;
  const results: Record<string, { detect: number[]; recover: number[] }> = {};
  const load: { before?: [number, number, number]; after?: [number, number, number] } = {};
  try {
    await cluster.createNode(NODE);
    const port = await freeLoopbackPort();
    agent = startAgent({
      name: 'agent',
      dir,
      nodeFlags: daemonSetNodeFlags(),
      config: agentConfig({ kubeconfig: cluster.agentKubeconfig, port, procRoot, sysRoot: join(dir, 'sys'), dnsServer: dns.address, kmsgRuleFile: kmsg?.path }),
    });
    await waitForOk(`http://127.0.0.1:${port}/readyz`, 60_000, agent);
    watch = await NodeWatch.start(cluster.admin, NODE);
    for (const condition of ['DNSProblem', 'CPUPressureProblem', ...(kmsg ? [KMSG_CONDITION] : [])]) await watch.untilCondition(condition, 'False', 30_000);
    const faults: Fault[] = [
      { name: 'DNS server SERVFAIL', condition: 'DNSProblem', inject: () => dns.setMode('servfail'), clear: () => dns.setMode('answer') },
      { name: 'cpu PSI some avg10 1% -> 90%', condition: 'CPUPressureProblem', inject: () => writeCpuPressure(procRoot, 90), clear: () => writeCpuPressure(procRoot, 1) },
    ];
    load.before = loadAverages();
    for (const fault of faults) results[fault.name] = await measure(fault, watch, trials, log);
    if (kmsg) results[KMSG_FAULT] = await measureKmsg(kmsg.linePrefix, watch, trials, log);
    else log('not root: the kernel log row is left out (writing to /dev/kmsg takes root)');
    load.after = loadAverages();
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
  const kmsgFigures = (samples: number[], floorMs: number, boundMs: number) => {
    const medianMs = median(samples);
    const idealMedianMs = (floorMs + boundMs) / 2;
    return { floorMs, idealMedianMs, boundMs, medianMs, p99Ms: percentile(samples, 99), overheadMs: medianMs - idealMedianMs, samplesMs: samples };
  };
  const summary = Object.entries(results).map(([fault, r]) =>
    fault === KMSG_FAULT
      ? {
          fault,
          trials: r.detect.length,
          // A permanent rule sets its condition on the first matching line: no hysteresis.
          detect: kmsgFigures(r.detect, 0, 0),
          // Cleared by the engine's once-a-second expiry, clearAfterSeconds after the line.
          recover: kmsgFigures(r.recover, KMSG_CLEAR_AFTER_SECONDS * 1000, (KMSG_CLEAR_AFTER_SECONDS + 1) * 1000),
        }
      : { fault, trials: r.detect.length, detect: figures(r.detect, FAILURE_THRESHOLD), recover: figures(r.recover, RECOVERY_THRESHOLD) },
  );
  const rows = summary.flatMap((s) =>
    (['detect', 'recover'] as const).map((phase) => {
      const f = s[phase];
      const back = s.fault === KMSG_FAULT ? `back to False (clearAfterSeconds ${KMSG_CLEAR_AFTER_SECONDS}, from the write)` : 'back to False';
      return [`${s.fault}: ${phase === 'detect' ? 'True' : back}`, s.trials, `${f.floorMs}-${f.boundMs}`, f.idealMedianMs, f.medianMs, f.p99Ms, f.overheadMs];
    }),
  );
  process.stdout.write(
    `\nDetection latency: fault injected -> condition seen on a watch of the Node at the API server\n` +
      `(interval ${INTERVAL_SECONDS} s, failureThreshold ${FAILURE_THRESHOLD}, recoveryThreshold ${RECOVERY_THRESHOLD}; ` +
      `hysteresis range (threshold-1..threshold) x interval; p99 is nearest-rank, so the largest of ${trials}); ` +
      `load average ${load.before?.join(' ')} at the start, ${load.after?.join(' ')} at the end\n` +
      renderTable(['fault', 'trials', 'range ms', 'ideal median', 'median ms', 'p99 ms', 'median - ideal'], rows),
  );
  const path = writeResults('detectionLatency', {
    benchmark: 'detectionLatency',
    at: new Date().toISOString(),
    machine: machineFacts(),
    load,
    intervalSeconds: INTERVAL_SECONDS,
    failureThreshold: FAILURE_THRESHOLD,
    recoveryThreshold: RECOVERY_THRESHOLD,
    kmsg: { condition: KMSG_CONDITION, clearAfterSeconds: KMSG_CLEAR_AFTER_SECONDS, p99TargetMs: KMSG_P99_TARGET_MS },
    faults: summary,
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('detectionLatency', main);
