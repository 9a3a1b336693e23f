import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { waitForOk } from './support/agentProcess.js';
import { shippedMonitors } from './support/benchAgentConfig.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { renderTable, writeResults } from './support/benchOutput.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { floodGrowth, lostTotalFromAgentLog, metricValue, phaseFigures, type PhaseFigures, type UsageSample } from './support/floodFigures.js';
import { clockTicksPerSecond } from './support/footprintSampler.js';
import { InClusterBench } from './support/inClusterAgent.js';
import { devkmsgSetting, isRoot, KmsgWriter, newestKmsgSeq, nonceRuleFile, setDevkmsg } from './support/kernelLog.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { loadAverages } from './support/machineLoad.js';
import { nodeProblemDetectorBinary, startNodeProblemDetectorAsShipped, type NpdRun } from './support/nodeProblemDetector.js';
import { sampleTree } from './support/processTree.js';

/**
 * A flood of kernel log lines into the real /dev/kmsg while the in-cluster agent runs as the
 * DaemonSet ships it (kernel monitor with the built-in rules, restart monitor, every probe,
 * publishing) and, beside it, NPD as its DaemonSet ships it, both with a rule file of this run:
 * 10,000 lines a second for a minute, one in MATCH_EVERY matching a temporary rule, so every
 * line goes through every rule set and some make Events. Reported: RSS before, during and after
 * and whether it levelled off, CPU in cores during the flood, records read against written,
 * records the agent lost (the ring buffer overwrote them before it read them: its
 * KernelLogRecordsLost count; NPD counts none, so for both: the share of matching lines each
 * reported), and how long after the flood each read its end marker. Root only.
 */

const RATE_PER_SECOND = 10_000;
const MATCH_EVERY = 2_000;
const BASELINE_SECONDS = 20;
/** The agent says lost records at most once a minute (kernelMonitor lostReportMs): wait for the last report. */
const SETTLE_SECONDS = 65;
/** RSS growth from the flood's middle third to its last that still counts as levelled off. */
const ALLOWED_GROWTH_MIB = 2;
const WRITE_TICK_MS = 10;
const NPD_NODE = 'npd-node';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lines about as long as a kernel's (~100 characters), none matching a rule but this run's own. */
function floodLine(prefix: string, i: number): string {
  return i % MATCH_EVERY === 0 ? `${prefix} match ${i}` : `${prefix} flood ${i} lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod`;
}

/** A process reading the flood: sampled every second, and asked how many of this run's matching lines it saw. */
interface Reader {
  name: string;
  pid: () => number;
  logTail: () => string;
  /** Lines of this run it matched, by the temporary rule's reason. */
  matched: (reason: string) => Promise<number>;
  samples: UsageSample[];
}

export async function main(options: BenchOptions): Promise<void> {
  if (!isRoot()) throw new Error('kmsgFlood writes to the real /dev/kmsg and needs root');
  const floodSeconds = options.durationSeconds ?? (options.quick ? 15 : 60);
  const log = (line: string) => process.stderr.write(`kmsgFlood: ${line}\n`);
  const ticks = clockTicksPerSecond();
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-flood-'));
  const nonce = randomBytes(4).toString('hex');
  const rules = nonceRuleFile(dir, {
    nonce,
    source: `bench-flood-${nonce}`,
    temporary: [
      { reason: 'BenchFloodMatch', word: 'match' },
      { reason: 'BenchFloodEnd', word: 'end' },
    ],
  });
  const shipped = shippedMonitors() as { kernel?: object };
  const monitors = { ...shipped, kernel: { ...shipped.kernel, ruleFiles: [rules.path] } };

  const devkmsg = setDevkmsg('on');
  const restoreOnSignal = (signal: NodeJS.Signals) => {
    devkmsg.restore();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', restoreOnSignal);
  process.once('SIGTERM', restoreOnSignal);
  log(`printk_devkmsg was "${devkmsg.before}", set to "on" for the flood (ratelimit drops a writer's records past a burst of 10 per 5 s)`);

  const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
  let bench: InClusterBench | undefined;
  let agent: Awaited<ReturnType<InClusterBench['startAgent']>> | undefined;
  let npd: NpdRun | undefined;
  const readers: Reader[] = [];
  let startedAt = 0;
  const sampleAll = () => {
    const at = (performance.now() - startedAt) / 1000;
    for (const reader of readers) {
      const usage = sampleTree(reader.pid(), ticks);
      if (!usage) throw new Error(`${reader.name} exited during the run:\n${reader.logTail()}`);
      reader.samples.push({ at, rssKiB: usage.rssKiB, anonKiB: usage.anonKiB, cpuSeconds: usage.cpuSeconds, peakRssKiB: usage.peakRssKiB });
    }
  };
  const sampleFor = async (seconds: number) => {
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      sampleAll();
      await sleep(1000);
    }
  };
  const counter = async (url: string, name: string, labels: Record<string, string>) =>
    metricValue(await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text(), name, labels);

  try {
    bench = await InClusterBench.start(dns, log);
    const started = await bench.startAgent({ index: 0, dir, nodeFlags: daemonSetNodeFlags(), monitors });
    agent = started;
    readers.push({
      name: 'agent in-cluster',
      pid: () => started.process.pid,
      logTail: () => started.process.logTail(),
      matched: (reason) => counter(`${started.baseUrl}/metrics`, 'nodepulse_probe_failures_total', { probe: 'kernel', reason }),
      samples: [],
    });
    await bench.cluster.createNode(NPD_NODE);
    const npdPrometheus = await freeLoopbackPort();
    const npdRun = startNodeProblemDetectorAsShipped({
      binary: nodeProblemDetectorBinary(),
      dir,
      prometheusPort: npdPrometheus,
      kubernetes: { server: bench.cluster.plane.server, kubeconfig: bench.cluster.plane.kubeconfig, nodeName: NPD_NODE, port: await freeLoopbackPort() },
      extraLogMonitors: [rules.path],
    });
    npd = npdRun;
    readers.push({
      name: 'NPD as shipped',
      pid: () => npdRun.process.pid,
      logTail: () => npdRun.process.logTail(),
      // NPD counts every problem it reports (metricsReporting defaults to true).
      matched: (reason) => counter(`http://127.0.0.1:${npdPrometheus}/metrics`, 'problem_counter', { reason }),
      samples: [],
    });
    startedAt = performance.now();
    await waitForOk(`${started.baseUrl}/readyz`, 60_000, started.process);
    log(`agent and NPD running; ${BASELINE_SECONDS} s of baseline`);
    await sampleFor(BASELINE_SECONDS);
    const loadBefore = loadAverages();

    const seqBefore = newestKmsgSeq();
    const writer = new KmsgWriter();
    const writerCpuBefore = process.cpuUsage();
    const floodFrom = (performance.now() - startedAt) / 1000;
    let written = 0;
    let matchWritten = 0;
    let nextSample = performance.now();
    const floodStart = performance.now();
    log(`flooding /dev/kmsg with ${RATE_PER_SECOND} lines/s for ${floodSeconds} s (nonce ${nonce})`);
    try {
      for (;;) {
        const elapsed = (performance.now() - floodStart) / 1000;
        if (elapsed >= floodSeconds) break;
        const due = Math.min(Math.floor(elapsed * RATE_PER_SECOND), floodSeconds * RATE_PER_SECOND);
        for (; written < due; written++) {
          if (written % MATCH_EVERY === 0) matchWritten++;
          writer.write(floodLine(rules.linePrefix, written));
        }
        if (performance.now() >= nextSample) {
          sampleAll();
          nextSample += 1000;
        }
        await sleep(WRITE_TICK_MS);
      }
      const endWrittenAt = performance.now();
      writer.write(`${rules.linePrefix} end 1`);
      const floodTo = (performance.now() - startedAt) / 1000;
      const floodWall = (endWrittenAt - floodStart) / 1000;
      const writerCpu = process.cpuUsage(writerCpuBefore);
      const seqAfter = newestKmsgSeq();

      // Drained: each reader has read the end marker (or never does: overwritten, or too slow).
      const drainMs = new Map<string, number>();
      const drainDeadline = performance.now() + 60_000;
      while (performance.now() < drainDeadline && drainMs.size < readers.length) {
        for (const reader of readers) {
          if (!drainMs.has(reader.name) && (await reader.matched('BenchFloodEnd')) >= 1) drainMs.set(reader.name, Math.round(performance.now() - endWrittenAt));
        }
        sampleAll();
        await sleep(100);
      }
      log(`flood over: ${written} lines in ${floodWall.toFixed(1)} s; ${SETTLE_SECONDS} s to settle`);
      const settleFrom = (performance.now() - startedAt) / 1000;
      await sampleFor(SETTLE_SECONDS);
      const settleTo = (performance.now() - startedAt) / 1000;
      const loadAfter = loadAverages();
      const lost = lostTotalFromAgentLog(readFileSync(started.process.logPath, 'utf8'));
      const recordsInWindow = seqAfter - seqBefore;

      const processes: Record<string, ReaderFigures> = {};
      for (const reader of readers) {
        const last = reader.samples[reader.samples.length - 1] as UsageSample & { peakRssKiB: number };
        processes[reader.name] = {
          before: phaseFigures(reader.samples, 0, floodFrom),
          during: phaseFigures(reader.samples, floodFrom, floodTo),
          settle: phaseFigures(reader.samples, settleFrom, settleTo + 1),
          after: phaseFigures(reader.samples, settleTo - 10, settleTo + 1),
          peakRssMiB: Number((last.peakRssKiB / 1024).toFixed(1)),
          growth: floodGrowth(reader.samples, floodFrom, floodTo, ALLOWED_GROWTH_MIB),
          matchRead: await reader.matched('BenchFloodMatch'),
          drainMs: drainMs.get(reader.name) ?? null,
        };
      }
      const figures: FloodFigures = {
        nonce,
        floodSeconds: Number(floodWall.toFixed(1)),
        rateTarget: RATE_PER_SECOND,
        linesWritten: written,
        rateAchieved: Math.round(written / floodWall),
        writerCores: Number(((writerCpu.user + writerCpu.system) / 1e6 / floodWall).toFixed(3)),
        kernelRecords: recordsInWindow,
        agentLostRecords: lost,
        agentRecordsRead: recordsInWindow - lost,
        matchWritten,
        processes,
        load: { before: loadBefore, after: loadAfter },
        printkDevkmsg: { before: devkmsg.before, during: 'on' },
      };
      devkmsg.restore();
      print(figures);
      const path = writeResults('kmsgFlood', { benchmark: 'kmsgFlood', at: new Date().toISOString(), machine: machineFacts(), matchEvery: MATCH_EVERY, ...figures, printkDevkmsgRestored: devkmsgSetting() });
      process.stdout.write(`results: ${path}\n`);
    } finally {
      writer.close();
    }
  } catch (err) {
    for (const reader of readers) log(`${reader.name} log tail:\n${reader.logTail()}`);
    throw err;
  } finally {
    devkmsg.restore();
    process.removeListener('SIGINT', restoreOnSignal);
    process.removeListener('SIGTERM', restoreOnSignal);
    await npd?.process.stop();
    await agent?.process.stop();
    await bench?.stop();
    await dns.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}

interface ReaderFigures {
  before: PhaseFigures;
  during: PhaseFigures;
  settle: PhaseFigures;
  after: PhaseFigures;
  peakRssMiB: number;
  growth: ReturnType<typeof floodGrowth>;
  matchRead: number;
  drainMs: number | null;
}

interface FloodFigures {
  nonce: string;
  floodSeconds: number;
  rateTarget: number;
  linesWritten: number;
  rateAchieved: number;
  writerCores: number;
  /** Every record the kernel took between the two readings, the bench's and any other writer's (and the end marker). */
  kernelRecords: number;
  agentLostRecords: number;
  agentRecordsRead: number;
  matchWritten: number;
  processes: Record<string, ReaderFigures>;
  load: { before: number[]; after: number[] };
  printkDevkmsg: { before: string; during: string };
}

function print(f: FloodFigures): void {
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
  const entries = Object.entries(f.processes);
  const phaseRows = entries.flatMap(([name, p]) =>
    (
      [
        ['before (idle)', p.before],
        ['during the flood', p.during],
        [`settling (${SETTLE_SECONDS} s)`, p.settle],
        ['after (last 10 s)', p.after],
      ] as const
    ).map(([phase, x]) => [name, phase, x.samples, x.rssMiB, x.anonMiB, x.peakRssMiB, x.cores]),
  );
  const agent = f.processes['agent in-cluster'];
  process.stdout.write(
    `\nkmsg flood: ${f.linesWritten} lines into the real /dev/kmsg in ${f.floodSeconds} s (${f.rateAchieved}/s of ${f.rateTarget}/s asked; writer ${f.writerCores} cores), ` +
      `read by the in-cluster agent as shipped and NPD as shipped, each with a rule file of this run; load average ${load(f.load.before)} before, ${load(f.load.after)} after\n` +
      `printk_devkmsg "${f.printkDevkmsg.before}" -> "on" for the flood, restored to "${f.printkDevkmsg.before}" after\n` +
      renderTable(['process', 'phase', 'samples', 'RSS MiB', 'anon', 'peak', 'CPU cores'], phaseRows) +
      renderTable(['records', 'count'], [
        ['taken by the kernel during the flood (all writers)', f.kernelRecords],
        ['written by the bench', f.linesWritten + 1],
        ['read by the agent (taken - lost)', f.agentRecordsRead],
        ['lost by the agent: overwritten before it read them (KernelLogRecordsLost)', f.agentLostRecords],
      ]) +
      renderTable(
        ['process', `matching lines read of ${f.matchWritten}`, 'share', 'end marker read after ms', 'peak RSS (VmHWM)', 'RSS middle -> last third of the flood', 'levelled off'],
        entries.map(([name, p]) => [
          name,
          p.matchRead,
          `${Math.round((p.matchRead / f.matchWritten) * 100)} %`,
          p.drainMs ?? 'never',
          p.peakRssMiB,
          `${p.growth.middleMiB} -> ${p.growth.endMiB} (${p.growth.growthMiB >= 0 ? '+' : ''}${p.growth.growthMiB})`,
          p.growth.bounded ? 'bounded' : 'GROWING',
        ]),
      ) +
      (agent ? `agent: ${agent.growth.bounded ? 'bounded' : 'GROWING'} (RSS growth over the flood's last third at most +${agent.growth.allowedMiB} MiB)\n` : ''),
  );
}

if (isMainModule(import.meta.url)) runBenchMain('kmsgFlood', main);
