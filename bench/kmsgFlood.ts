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
import { floodGrowth, lostTotalFromAgentLog, metricValue, phaseFigures, type UsageSample } from './support/floodFigures.js';
import { clockTicksPerSecond } from './support/footprintSampler.js';
import { InClusterBench } from './support/inClusterAgent.js';
import { devkmsgSetting, isRoot, KmsgWriter, newestKmsgSeq, nonceRuleFile, setDevkmsg } from './support/kernelLog.js';
import { machineFacts } from './support/machine.js';
import { loadAverages } from './support/machineLoad.js';
import { sampleTree } from './support/processTree.js';

/**
 * A flood of kernel log lines into the real /dev/kmsg while the in-cluster agent runs as the
 * DaemonSet ships it (kernel monitor with the built-in rules, restart monitor, every probe,
 * publishing), plus a rule file of this run: 10,000 lines a second for a minute, one in
 * MATCH_EVERY matching a temporary rule, so every line goes through every rule set and some
 * make Events. Reported: the agent's RSS before, at the peak and after, its CPU in cores
 * during the flood, records read against written, and records lost (the ring buffer
 * overwrote them before the agent read them: its KernelLogRecordsLost count). Root only.
 */

const RATE_PER_SECOND = 10_000;
const MATCH_EVERY = 2_000;
const BASELINE_SECONDS = 20;
/** The agent says lost records at most once a minute (kernelMonitor lostReportMs): wait for the last report. */
const SETTLE_SECONDS = 65;
/** RSS growth from the flood's middle third to its last that still counts as levelled off. */
const ALLOWED_GROWTH_MIB = 2;
const WRITE_TICK_MS = 10;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lines about as long as a kernel's (~100 characters), none matching a rule but this run's own. */
function floodLine(prefix: string, i: number): string {
  return i % MATCH_EVERY === 0 ? `${prefix} match ${i}` : `${prefix} flood ${i} lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod`;
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
  const samples: UsageSample[] = [];
  let startedAt = 0;
  const sample = () => {
    const usage = agent && sampleTree(agent.process.pid, ticks);
    if (!usage) throw new Error(`the agent exited during the flood:\n${agent?.process.logTail()}`);
    samples.push({ at: (performance.now() - startedAt) / 1000, rssKiB: usage.rssKiB, anonKiB: usage.anonKiB, cpuSeconds: usage.cpuSeconds });
    return usage;
  };
  const sampleFor = async (seconds: number) => {
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      sample();
      await sleep(1000);
    }
  };
  const metrics = async () => (await fetch(`${agent?.baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const matched = async (reason: string) => metricValue(await metrics(), 'nodepulse_probe_failures_total', { probe: 'kernel', reason });

  try {
    bench = await InClusterBench.start(dns, log);
    agent = await bench.startAgent({ index: 0, dir, nodeFlags: daemonSetNodeFlags(), monitors });
    startedAt = performance.now();
    await waitForOk(`${agent.baseUrl}/readyz`, 60_000, agent.process);
    log(`agent ready; ${BASELINE_SECONDS} s of baseline`);
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
          sample();
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

      // Drained: the agent has read the end marker (or gave up on it: overwritten, or too slow).
      let drainMs: number | undefined;
      const drainDeadline = performance.now() + 60_000;
      while (performance.now() < drainDeadline) {
        if ((await matched('BenchFloodEnd')) >= 1) {
          drainMs = Math.round(performance.now() - endWrittenAt);
          break;
        }
        sample();
        await sleep(100);
      }
      log(`flood over: ${written} lines in ${floodWall.toFixed(1)} s; end marker read ${drainMs === undefined ? 'never (60 s)' : `${drainMs} ms after it was written`}; ${SETTLE_SECONDS} s to settle`);
      const settleFrom = (performance.now() - startedAt) / 1000;
      await sampleFor(SETTLE_SECONDS);
      const settleTo = (performance.now() - startedAt) / 1000;
      const loadAfter = loadAverages();
      const matchRead = await matched('BenchFloodMatch');
      const lost = lostTotalFromAgentLog(readFileSync(agent.process.logPath, 'utf8'));
      const last = sample();

      const recordsInWindow = seqAfter - seqBefore;
      const before = phaseFigures(samples, 0, floodFrom);
      const during = phaseFigures(samples, floodFrom, floodTo);
      const after = phaseFigures(samples, settleTo - 10, settleTo + 1);
      const growth = floodGrowth(samples, floodFrom, floodTo, ALLOWED_GROWTH_MIB);
      const figures = {
        nonce,
        floodSeconds: Number(floodWall.toFixed(1)),
        rateTarget: RATE_PER_SECOND,
        linesWritten: written,
        rateAchieved: Math.round(written / floodWall),
        writerCores: Number(((writerCpu.user + writerCpu.system) / 1e6 / floodWall).toFixed(3)),
        /** Every record the kernel took between the two readings, the bench's and any other writer's (and the end marker). */
        kernelRecords: recordsInWindow,
        lostRecords: lost,
        recordsRead: recordsInWindow - lost,
        matchWritten,
        matchRead,
        drainMs: drainMs ?? null,
        before,
        during,
        settle: phaseFigures(samples, settleFrom, settleTo + 1),
        after,
        peakRssMiB: Number((last.peakRssKiB / 1024).toFixed(1)),
        growth,
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
    if (agent) log(`agent log tail:\n${agent.process.logTail()}`);
    throw err;
  } finally {
    devkmsg.restore();
    process.removeListener('SIGINT', restoreOnSignal);
    process.removeListener('SIGTERM', restoreOnSignal);
    await agent?.process.stop();
    await bench?.stop();
    await dns.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}

function print(f: {
  floodSeconds: number;
  rateTarget: number;
  linesWritten: number;
  rateAchieved: number;
  writerCores: number;
  kernelRecords: number;
  lostRecords: number;
  recordsRead: number;
  matchWritten: number;
  matchRead: number;
  drainMs: number | null;
  before: ReturnType<typeof phaseFigures>;
  during: ReturnType<typeof phaseFigures>;
  settle: ReturnType<typeof phaseFigures>;
  after: ReturnType<typeof phaseFigures>;
  peakRssMiB: number;
  growth: ReturnType<typeof floodGrowth>;
  load: { before: number[]; after: number[] };
  printkDevkmsg: { before: string };
}): void {
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
  const row = (name: string, p: ReturnType<typeof phaseFigures>) => [name, p.samples, p.rssMiB, p.anonMiB, p.peakRssMiB, p.cores];
  process.stdout.write(
    `\nkmsg flood: ${f.linesWritten} lines into the real /dev/kmsg in ${f.floodSeconds} s (${f.rateAchieved}/s of ${f.rateTarget}/s asked; writer ${f.writerCores} cores), ` +
      `the in-cluster agent as shipped + a rule file of this run; load average ${load(f.load.before)} before, ${load(f.load.after)} after\n` +
      `printk_devkmsg "${f.printkDevkmsg.before}" -> "on" for the flood, restored to "${f.printkDevkmsg.before}" after\n` +
      renderTable(['agent', 'samples', 'RSS MiB', 'anon', 'peak', 'CPU cores'], [
        row('before (idle)', f.before),
        row('during the flood', f.during),
        row(`settling (${SETTLE_SECONDS} s)`, f.settle),
        row('after (last 10 s)', f.after),
      ]) +
      renderTable(['records', 'count'], [
        ['taken by the kernel during the flood (all writers)', f.kernelRecords],
        ['written by the bench', f.linesWritten + 1],
        ['read by the agent (taken - lost)', f.recordsRead],
        ['lost: overwritten before the agent read them (KernelLogRecordsLost)', f.lostRecords],
        [`matching this run's temporary rule: written / read`, `${f.matchWritten} / ${f.matchRead}`],
        ['end marker read after (ms)', f.drainMs ?? 'never'],
      ]) +
      `peak RSS (VmHWM) ${f.peakRssMiB} MiB; RSS from the flood's middle third to its last: ${f.growth.middleMiB} -> ${f.growth.endMiB} MiB (${f.growth.growthMiB >= 0 ? '+' : ''}${f.growth.growthMiB}): ` +
      `${f.growth.bounded ? 'bounded' : 'GROWING'} (allowed +${f.growth.allowedMiB} MiB)\n`,
  );
}

if (isMainModule(import.meta.url)) runBenchMain('kmsgFlood', main);
