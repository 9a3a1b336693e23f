import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { serializeRemediationState } from '../controller/remediationState.js';
import { waitForOk } from './support/agentProcess.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { BenchCluster } from './support/benchCluster.js';
import { startController } from './support/benchController.js';
import type { BenchProcess } from './support/benchProcess.js';
import { ratio, renderTable, repoRoot, writeResults } from './support/benchOutput.js';
import { controllerDeployment } from './support/controllerDeployment.js';
import { CountingProxy, talliesBetween, type IntervalTally, type Tallies } from './support/countingProxy.js';
import { clockTicksPerSecond } from './support/footprintSampler.js';
import { UPDATES_PER_SECOND_PER_1000_NODES, startHeartbeatChurn, type ChurnFigures } from './support/heartbeatChurn.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { busyCoresBetween, loadAverages, machineCpuTimes } from './support/machineLoad.js';
import { createNodes, fleetNode, fleetNodeName } from './support/nodeFleet.js';
import { NodeWatch } from './support/nodeWatch.js';
import { parseStat, readMemory } from './support/processTree.js';
import { median, percentile } from './support/stats.js';

/**
 * The controller at fleet scale on a real kube-apiserver, each fleet size on a fresh one: N
 * plain Node objects shaped like kubelet-registered ones, and heartbeats patching them in the
 * background at the rate a fleet that size makes (6.6 a second per 1,000 nodes). Measured:
 * the controller's RSS at steady churn, its growth per node, the time to its first full
 * decision pass, the latency from a Node turning NotReady to the controller's decision with
 * the churn running, its CPU, and what it asks of the API server (through a counting proxy in
 * front of the API server that only the controller uses). The controller runs with the
 * Deployment's environment and Node flags; at the reference size it runs again without each
 * memory setting that environment carries (MALLOC_ARENA_MAX, NODE_OPTIONS) and with V8's
 * --optimize-for-size turned the other way, so the settings are chosen by measurement.
 */

const STATE_ANNOTATION = 'nodepulse.io/remediation-state';
const NOT_READY_SECONDS = 600;
const REMEDIATE_AFTER_SECONDS = 300;
const MiB = 1024;
const ARENA = 'MALLOC_ARENA_MAX';
/** The fleet size the issue's targets are stated at. */
const REFERENCE_NODES = 5000;

/** Issue 11's "now" column (bench/controllerScale on 2026-11-23, before the paged list, slim cache and work queue). */
const TODAY = { rssMiB: 464, rssArenaMiB: 321, growthKiBPerNode: 65, firstPassMs: 1030, decisionP99Ms: 82 };
const TARGET = { rssMiB: 150, growthKiBPerNode: 15, firstPassMs: 1000, decisionP99Ms: 50 };

/** Defaults, except the safety limits that would hold back the trials' repeated starts. */
const controllerConfig = {
  provider: { type: 'dry-run' },
  detection: { notReadySeconds: NOT_READY_SECONDS, remediateAfterSeconds: REMEDIATE_AFTER_SECONDS, noStatusSeconds: 86_400 },
  safety: { maxInFlight: 10_000, minStartSpacingSeconds: 0, stormCooldownSeconds: 0 },
};

interface Variant {
  name: string;
  env: Record<string, string>;
  unsetEnv: string[];
  nodeFlags: string[];
}

interface Timing {
  trials: number;
  idleSeconds: number;
  warmupSeconds: number;
  steadySeconds: number;
}

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
    between: (from: number, to: number) => samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.rssKiB),
    stop: () => clearInterval(timer),
  };
}

/** utime + stime of one process, in clock ticks. */
function cpuTicks(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).ownTicks;
}

/** The controller's memory after a full GC, from the preload's report. */
async function readMemoryReport(path: string, controller: BenchProcess) {
  const deadline = Date.now() + 60_000;
  while (!existsSync(path)) {
    if (Date.now() > deadline || !controller.running) throw new Error(`the controller wrote no memory report:\n${controller.logTail()}`);
    await sleep(200);
  }
  const report = JSON.parse(readFileSync(path, 'utf8')) as {
    memoryUsage: NodeJS.MemoryUsage;
    status: string;
    heapSpaces: Array<{ space_name: string; space_used_size: number; physical_space_size: number }>;
  };
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(report.status)?.[1]);
  const mib = (bytes: number) => round(bytes / 2 ** 20);
  return {
    rssMiB: round(kib('VmRSS') / MiB),
    anonMiB: round(kib('RssAnon') / MiB),
    fileMiB: round(kib('RssFile') / MiB),
    heapUsedMiB: mib(report.memoryUsage.heapUsed),
    heapTotalMiB: mib(report.memoryUsage.heapTotal),
    externalMiB: mib(report.memoryUsage.external),
    arrayBuffersMiB: mib(report.memoryUsage.arrayBuffers),
    /** V8's spaces, resident and used: the young generation stays at the size the allocation rate grew it to. */
    spacesMiB: Object.fromEntries(
      report.heapSpaces.filter((s) => s.physical_space_size > 0).map((s) => [s.space_name, { resident: mib(s.physical_space_size), used: mib(s.space_used_size) }]),
    ),
  };
}

/** Which controller was measured: the commit, and the controller files that differed from it (dist/ is built from the working tree). */
function controllerSource() {
  // trimEnd: a porcelain line starts with its status columns, which may be blank.
  const git = (args: string[]) => execFileSync('git', args, { cwd: repoRoot(), encoding: 'utf8' }).trimEnd();
  try {
    return { commit: git(['rev-parse', '--short', 'HEAD']), uncommitted: git(['status', '--porcelain', '--', 'controller', 'common']).split('\n').filter(Boolean) };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/** An interval's API traffic scaled to an hour: requests and response MiB by kind, and the sums for LIST and WATCH. */
function perHour(tallies: Record<string, IntervalTally>, seconds: number) {
  const scale = 3600 / seconds;
  const byKind: Record<string, { requests: number; responseMiB: number; requestKiB: number }> = {};
  const sums = { list: { requests: 0, responseMiB: 0 }, watch: { requests: 0, responseMiB: 0 }, other: { requests: 0, responseMiB: 0, requestKiB: 0 } };
  for (const [kind, t] of Object.entries(tallies)) {
    const entry = { requests: round(t.requests * scale), responseMiB: round((t.responseBytes * scale) / 2 ** 20, 2), requestKiB: round((t.requestBytes * scale) / 1024) };
    byKind[kind] = entry;
    const sum = kind.startsWith('LIST ') ? sums.list : kind.startsWith('WATCH ') ? sums.watch : sums.other;
    sum.requests = round(sum.requests + entry.requests);
    sum.responseMiB = round(sum.responseMiB + entry.responseMiB, 2);
    if (sum === sums.other) sums.other.requestKiB = round(sums.other.requestKiB + entry.requestKiB);
  }
  return { seconds: round(seconds), ...sums, byKind };
}

/**
 * The initial sync as the API server saw it: one streaming list (a WATCH of Nodes with
 * sendInitialEvents, no LIST) or, on the fallback, the LIST of Nodes in pages.
 */
function initialList(tallies: Tallies, startedAt: number, syncedMs: number) {
  const list = tallies['LIST nodes'];
  const stream = tallies['WATCH nodes'];
  if (!list && stream) {
    return {
      via: 'watchList' as const,
      pages: 0,
      streams: stream.requests,
      /** The stream's bytes up to the first pass: the initial events and what followed them until then. */
      responseMiB: round(stream.responseBytes / 2 ** 20, 2),
      largestPageKiB: 0,
      compressedPages: stream.compressed,
      /** From the controller's start to its streaming list's request. */
      startMs: stream.firstAt - startedAt,
      /** From that request to /readyz answering (the initial-events-end bookmark, as polled). */
      durationMs: syncedMs - (stream.firstAt - startedAt),
    };
  }
  if (!list) throw new Error('the controller neither listed nor watched Nodes through the counting proxy');
  return {
    via: 'list' as const,
    pages: list.requests,
    streams: 0,
    responseMiB: round(list.responseBytes / 2 ** 20, 2),
    largestPageKiB: round(list.largestResponseBytes / 1024),
    compressedPages: list.compressed,
    /** From the controller's start to its first LIST request: process start-up and module loading. */
    startMs: list.firstAt - startedAt,
    /** From the first page asked to the last page received. */
    durationMs: list.lastEndAt - list.firstAt,
  };
}

/** The initial sync in words, for the log and the figures table. */
function initialSyncText(list: ReturnType<typeof initialList>): string {
  return list.via === 'watchList'
    ? `streaming list asked at ${list.startMs} ms, synced ${list.durationMs} ms later`
    : `first LIST at ${list.startMs} ms, ${list.pages} pages in ${list.durationMs} ms`;
}

/** LIST requests for Nodes the API server itself counted (the bench never lists Nodes, so they are the controller's). */
async function apiserverNodeLists(cluster: BenchCluster): Promise<number> {
  const text = await cluster.plane.kubectl(['get', '--raw', '/metrics']);
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('apiserver_request_total{') && line.includes('resource="nodes"') && line.includes('verb="LIST"') && line.includes('subresource=""')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

async function measureScale(nodeCount: number, variant: Variant, timing: Timing, log: (line: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), `nodepulse-scale-${nodeCount}-`));
  const ticksPerSecond = clockTicksPerSecond();
  const cores = cpus().length;
  const loadAtStart = loadAverages();
  const cluster = await BenchCluster.start(log);
  let controller: BenchProcess | undefined;
  let proxy: CountingProxy | undefined;
  let sampler: ReturnType<typeof rssSampler> | undefined;
  let churn: ReturnType<typeof startHeartbeatChurn> | undefined;
  try {
    const now = Date.now();
    const names = Array.from({ length: nodeCount }, (_, i) => fleetNodeName(i));
    const last = names[nodeCount - 1] as string;
    const nodes = names.map((name) => fleetNode(name, now));
    nodes[nodeCount - 1] = fleetNode(last, now, { [STATE_ANNOTATION]: longRecoveredState(now) });
    const createMs = await createNodes(cluster.core, nodes);
    nodes.length = 0;
    log(`${nodeCount} nodes created in ${(createMs / 1000).toFixed(1)} s`);
    const sample = await cluster.core.readNode({ name: fleetNodeName(0) });
    if (!sample.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
      throw new Error('the API server dropped the status of created Nodes; the fleet would not look Ready');
    }

    const caPem = Buffer.from(cluster.admin.getCurrentCluster()?.caData ?? '', 'base64').toString('utf8');
    proxy = await CountingProxy.start({ upstream: cluster.plane.server, caPem, ...cluster.servingCertificate(), logPath: join(dir, 'proxy.log') });
    const kubeconfig = cluster.adminKubeconfigVia(proxy.server, join(dir, 'controller.kubeconfig'));

    const lastWatch = await NodeWatch.start(cluster.admin, last);
    const metricsPort = await freeLoopbackPort();
    // Waiting starts before the controller does, so the time is the watch event's, not a poll's.
    const firstPassDone = lastWatch.until('reset by the first pass', (n) => !n.metadata?.annotations?.[STATE_ANNOTATION], 300_000);
    // Its timeout may fire while readiness is still awaited: handled, so the run still stops the controller below.
    firstPassDone.catch(() => undefined);
    const reportPath = join(dir, 'memory-report.json');
    const startedAt = Date.now();
    controller = startController({
      dir,
      config: controllerConfig,
      kubeconfig,
      metricsPort,
      nodeFlags: [...variant.nodeFlags, '--expose-gc', `--import=${new URL('./support/memoryReportPreload.js', import.meta.url).href}`],
      env: { ...variant.env, NODEPULSE_MEMORY_REPORT: reportPath, NODEPULSE_MEMORY_SNAPSHOT: 'no' },
      unsetEnv: variant.unsetEnv,
    });
    const pid = controller.pid;
    sampler = rssSampler(pid);
    await waitForOk(`http://127.0.0.1:${metricsPort}/readyz`, 300_000, controller);
    const syncedMs = Date.now() - startedAt;
    const firstPassMs = (await firstPassDone) - startedAt;
    const startupCpuSeconds = cpuTicks(pid) / ticksPerSecond;
    lastWatch.stop();
    const list = initialList((await proxy.counters()).tallies, startedAt, syncedMs);
    log(`${nodeCount} nodes (${variant.name}): ${initialSyncText(list)}, first full pass after ${firstPassMs} ms`);

    /** CPU, RSS and API traffic over one window. */
    const window = async (seconds: number) => {
      const from = { at: Date.now(), ticks: cpuTicks(pid), machine: machineCpuTimes(), ...(await (proxy as CountingProxy).counters()) };
      await sleep(seconds * 1000);
      const to = { at: Date.now(), ticks: cpuTicks(pid), machine: machineCpuTimes(), ...(await (proxy as CountingProxy).counters()) };
      const elapsed = (to.at - from.at) / 1000;
      const rss = (sampler as ReturnType<typeof rssSampler>).between(from.at, to.at);
      return {
        seconds: round(elapsed),
        cpuCores: round((to.ticks - from.ticks) / ticksPerSecond / elapsed, 3),
        machineBusyCores: round(busyCoresBetween(from.machine, to.machine, cores), 2),
        loadAtEnd: loadAverages(),
        rssMiB: round(median(rss) / MiB),
        rssRangeMiB: [round(Math.min(...rss) / MiB), round(Math.max(...rss) / MiB)],
        api: { ...perHour(talliesBetween(from.tallies, to.tallies), elapsed), tlsConnections: round(((to.connections - from.connections) * 3600) / elapsed) },
      };
    };
    // Without churn: the resync alone.
    const idle = await window(timing.idleSeconds);

    const churnRate = round((UPDATES_PER_SECOND_PER_1000_NODES * nodeCount) / 1000, 2);
    churn = startHeartbeatChurn(cluster.admin, names, churnRate);
    await sleep(timing.warmupSeconds * 1000);
    log(`${nodeCount} nodes: ${churnRate} heartbeats/s running; steady window of ${timing.steadySeconds} s`);
    const steady = await window(timing.steadySeconds);

    const trials: Array<{ node: string; ms: number; fromWatchMs: number; firstWriteMs: number; decisionWriteMs: number; writes: number }> = [];
    for (let k = 0; k < timing.trials; k++) {
      const name = fleetNodeName(Math.floor(((k + 0.5) * (nodeCount - 1)) / timing.trials));
      const watch = await NodeWatch.start(cluster.admin, name);
      await sleep(Math.random() * 1000);
      const notReadySeen = watch.untilCondition('Ready', 'False', 60_000);
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
      const seenAt = await watch.until('decided on by the controller', (n) => Boolean(n.metadata?.annotations?.[STATE_ANNOTATION]), 60_000);
      watch.stop();
      // The controller's writes to this Node, as they reached the proxy: when it acted, and how many round trips it took.
      const writes = (await proxy.writes()).filter((w) => w.path === `/api/v1/nodes/${name}` && w.at >= turnedAt && w.at <= seenAt);
      const first = writes[0];
      const lastWrite = writes.at(-1);
      trials.push({
        node: name,
        ms: seenAt - turnedAt,
        fromWatchMs: seenAt - (await notReadySeen),
        firstWriteMs: first ? first.at - turnedAt : Number.NaN,
        decisionWriteMs: lastWrite ? lastWrite.at - turnedAt : Number.NaN,
        writes: writes.length,
      });
    }
    const churnFigures: ChurnFigures = await churn.stop();
    churn = undefined;
    sampler.stop();
    const peakRssMiB = round((sampler.samples.at(-1)?.peakKiB ?? Number.NaN) / MiB);
    if (!controller.running) throw new Error(`the controller exited:\n${controller.logTail()}`);
    const { tallies: total, connections } = await proxy.counters();
    const apiserverLists = await apiserverNodeLists(cluster);
    if (apiserverLists !== (total['LIST nodes']?.requests ?? 0)) {
      throw new Error(`the API server counted ${apiserverLists} Node LISTs, the proxy ${total['LIST nodes']?.requests}: the proxy missed some of the controller's requests, or something else listed Nodes`);
    }
    controller.child.kill('SIGUSR2');
    const afterGc = await readMemoryReport(reportPath, controller);
    const latencies = trials.map((t) => t.ms);
    const point = {
      nodes: nodeCount,
      variant: variant.name,
      env: variant.env,
      loadAtStart,
      createSeconds: round(createMs / 1000),
      informerSyncedMs: syncedMs,
      firstFullPassMs: firstPassMs,
      startupCpuSeconds: round(startupCpuSeconds, 2),
      initialList: list,
      idle,
      churn: churnFigures,
      steady,
      peakRssMiB,
      afterGc,
      decision: {
        trials: timing.trials,
        medianMs: median(latencies),
        p99Ms: percentile(latencies, 99),
        /** The same from when a watcher saw the Node NotReady to when it saw the decision: the API server's write of the trial's patch left out. */
        fromWatchMedianMs: median(trials.map((t) => t.fromWatchMs)),
        fromWatchP99Ms: percentile(trials.map((t) => t.fromWatchMs), 99),
        maxMs: Math.max(...latencies),
        /** Ready=False patched -> the controller's first write to the Node reached the proxy (the API server's watch, the queue, the reconcile). */
        firstWriteMedianMs: median(trials.map((t) => t.firstWriteMs)),
        /** -> the controller's last write, the decided state (after any write before it, e.g. the ready-seen mark). */
        decisionWriteMedianMs: median(trials.map((t) => t.decisionWriteMs)),
        writesPerTrial: median(trials.map((t) => t.writes)),
        samples: trials,
      },
      apiTotals: total,
      tlsConnections: connections,
    };
    log(
      `${nodeCount} nodes (${variant.name}): RSS ${steady.rssMiB} MiB steady, ${steady.cpuCores} cores at churn (${idle.cpuCores} without), decision p99 ${point.decision.p99Ms} ms, load ${steady.loadAtEnd[0]}`,
    );
    return point;
  } catch (err) {
    if (controller) log(`controller log tail:\n${controller.logTail()}`);
    throw err;
  } finally {
    await churn?.stop();
    sampler?.stop();
    await controller?.stop();
    await proxy?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

type ScalePoint = Awaited<ReturnType<typeof measureScale>>;

/** Memory settings in the controller's environment that the comparison rows take away one at a time. */
const TUNING = [ARENA, 'NODE_OPTIONS'];
/** V8's smaller heap growth; a command-line flag only (Node refuses it in NODE_OPTIONS). */
const OPTIMIZE_FOR_SIZE = '--optimize-for-size';

/**
 * The Deployment's environment and Node flags, and the comparisons run beside it at the
 * reference size: the same without each memory setting it carries, with MALLOC_ARENA_MAX=2
 * if it carries none, and with --optimize-for-size turned the other way.
 */
function variants(): { shipped: Variant; comparisons: Variant[] } {
  const { env, nodeFlags } = controllerDeployment();
  const settings = TUNING.filter((key) => key in env);
  const shown = [...settings.map((key) => `${key}=${env[key]}`), ...nodeFlags];
  const shipped: Variant = {
    name: shown.length > 0 ? `as shipped (${shown.join(' ')})` : 'as shipped',
    env,
    unsetEnv: TUNING.filter((key) => !(key in env)),
    nodeFlags,
  };
  const without = (key: string): Variant => ({
    name: `without ${key}`,
    env: Object.fromEntries(Object.entries(env).filter(([k]) => k !== key)),
    unsetEnv: [...shipped.unsetEnv, key],
    nodeFlags,
  });
  const comparisons = settings.map(without);
  if (!(ARENA in env)) comparisons.push({ ...shipped, name: `with ${ARENA}=2`, env: { ...env, [ARENA]: '2' }, unsetEnv: shipped.unsetEnv.filter((k) => k !== ARENA) });
  comparisons.push(
    nodeFlags.includes(OPTIMIZE_FOR_SIZE)
      ? { ...shipped, name: `without ${OPTIMIZE_FOR_SIZE}`, nodeFlags: nodeFlags.filter((f) => f !== OPTIMIZE_FOR_SIZE) }
      : { ...shipped, name: `with ${OPTIMIZE_FOR_SIZE}`, nodeFlags: [...nodeFlags, OPTIMIZE_FOR_SIZE] },
  );
  return { shipped, comparisons };
}

/** KiB of steady RSS per additional node between consecutive fleet sizes. */
function growthSegments(points: ScalePoint[]) {
  return points.slice(1).map((p, i) => {
    const a = points[i] as ScalePoint;
    return { from: a.nodes, to: p.nodes, kibPerNode: round(((p.steady.rssMiB - a.steady.rssMiB) * 1024) / (p.nodes - a.nodes)) };
  });
}

const met = (ok: boolean) => (ok ? 'met' : 'MISSED');

function figureRows(reference: ScalePoint, comparisons: ScalePoint[], segments: ReturnType<typeof growthSegments>) {
  const n = reference.nodes.toLocaleString('en-US');
  const rows: Array<Array<string | number>> = [];
  rows.push([`RSS at ${n}, steady under churn`, `${TODAY.rssMiB} MiB (${TODAY.rssArenaMiB} with ${ARENA}=2)`, `${reference.steady.rssMiB} MiB`, ratio(reference.steady.rssMiB, TODAY.rssMiB), `<= ${TARGET.rssMiB} MiB`, met(reference.steady.rssMiB <= TARGET.rssMiB)]);
  for (const c of comparisons) rows.push([`  the same, ${c.variant}`, '', `${c.steady.rssMiB} MiB`, ratio(c.steady.rssMiB, TODAY.rssMiB), `<= ${TARGET.rssMiB} MiB`, met(c.steady.rssMiB <= TARGET.rssMiB)]);
  if (segments.length > 0) {
    const slopes = segments.map((s) => s.kibPerNode);
    const worst = Math.max(...slopes);
    // Linear: the slope between sizes stays within half again of the smallest.
    const linear = Math.max(...slopes) <= 1.5 * Math.max(Math.min(...slopes), 1);
    rows.push([
      'RSS growth per node',
      `${TODAY.growthKiBPerNode} KiB`,
      segments.map((s) => `${s.kibPerNode} KiB (${s.from}->${s.to})`).join(', '),
      ratio(worst, TODAY.growthKiBPerNode),
      `<= ${TARGET.growthKiBPerNode} KiB, linear`,
      `${met(worst <= TARGET.growthKiBPerNode)}${linear ? '' : ', not linear'}`,
    ]);
  }
  const list = reference.initialList;
  rows.push([
    `time to the first full pass at ${n}`,
    `${TODAY.firstPassMs} ms`,
    `${reference.firstFullPassMs} ms (${initialSyncText(list)})`,
    ratio(reference.firstFullPassMs, TODAY.firstPassMs),
    `<= ${TARGET.firstPassMs} ms`,
    met(reference.firstFullPassMs <= TARGET.firstPassMs),
  ]);
  const d = reference.decision;
  rows.push([
    `NotReady -> decision p99 at ${n}, ${reference.churn.achievedPerSecond} updates/s`,
    `${TODAY.decisionP99Ms} ms (no churn)`,
    `${d.p99Ms} ms, median ${d.medianMs} (watch to watch: ${d.fromWatchP99Ms}, ${d.fromWatchMedianMs})`,
    ratio(d.p99Ms, TODAY.decisionP99Ms),
    `<= ${TARGET.decisionP99Ms} ms`,
    met(d.p99Ms <= TARGET.decisionP99Ms),
  ]);
  rows.push([`controller CPU at ${n}, steady churn`, 'not measured', `${reference.steady.cpuCores} cores (${reference.idle.cpuCores} without churn; ${reference.startupCpuSeconds} CPU s to the first pass)`, '-', 'report', '']);
  const api = reference.steady.api;
  rows.push([
    'API server load from the controller, steady',
    'not measured',
    `${api.list.requests} LIST/h, ${api.watch.requests} WATCH/h, watch streams ${api.watch.responseMiB} MiB/h, other ${api.other.requests} req/h, ${api.tlsConnections} TLS connections/h`,
    '-',
    'report',
    '',
  ]);
  rows.push([
    `  initial sync at ${n}`,
    'one unpaginated LIST',
    reference.initialList.via === 'watchList'
      ? `${reference.initialList.streams} streaming list (WATCH, sendInitialEvents), no LIST, ${reference.initialList.responseMiB} MiB`
      : `${reference.initialList.pages} LIST pages, ${reference.initialList.responseMiB} MiB, largest ${reference.initialList.largestPageKiB} KiB`,
    '-',
    'pages or a stream',
    met(reference.initialList.via === 'watchList' || reference.initialList.pages > 1 || reference.nodes <= 500),
  ]);
  return rows;
}

export async function main(options: BenchOptions): Promise<void> {
  const counts = options.nodes ?? (options.quick ? [200] : [1000, 5000, 10000]);
  const timing: Timing = {
    trials: options.trials ?? (options.quick ? 5 : 20),
    idleSeconds: options.quick ? 5 : 20,
    warmupSeconds: options.quick ? 3 : 10,
    steadySeconds: options.durationSeconds ?? (options.quick ? 20 : 120),
  };
  const log = (line: string) => process.stderr.write(`controllerScale: ${line}\n`);
  const source = controllerSource();
  log(`controller at ${source.commit}${source.uncommitted.length > 0 ? `, with uncommitted changes to ${source.uncommitted.map((l) => l.slice(3)).join(', ')}` : ''}`);
  const { shipped, comparisons } = variants();
  const referenceCount = counts.includes(REFERENCE_NODES) ? REFERENCE_NODES : Math.max(...counts);
  const points: ScalePoint[] = [];
  const compared: ScalePoint[] = [];
  for (const count of counts) {
    points.push(await measureScale(count, shipped, timing, log));
    if (count === referenceCount) for (const variant of comparisons) compared.push(await measureScale(count, variant, timing, log));
  }
  const reference = points.find((p) => p.nodes === referenceCount) as ScalePoint;
  const segments = growthSegments(points);

  const all = [...points, ...compared];
  process.stdout.write(
    `\nController at scale (plain Node objects on a fresh real kube-apiserver per row; heartbeats at ${UPDATES_PER_SECOND_PER_1000_NODES}/s per 1,000 nodes during the steady window and the trials;\n` +
      `decision = from the trial's Ready=False patch (watch to watch: from a watch seeing it) to the state annotation seen on a watch, p99 nearest-rank of ${timing.trials},\nwith the medians to the controller's first and last write to that Node as they reached the proxy; load = 1-minute loadavg at the start and end of the steady window, busy = cores busy on the whole machine then)\n` +
      renderTable(
        ['nodes', 'controller env', 'load', 'busy', 'RSS MiB', 'range', 'peak', 'after GC', 'heap used', 'first LIST ms', 'list ms', 'first pass ms', 'cores idle', 'cores churn', 'updates/s', 'decision median', 'p99', 'watch to watch: median', 'p99', 'median to 1st write', 'to decision write', 'writes'],
        all.map((p) => [
          p.nodes,
          p.variant,
          `${p.loadAtStart[0]}/${p.steady.loadAtEnd[0]}`,
          p.steady.machineBusyCores,
          p.steady.rssMiB,
          p.steady.rssRangeMiB.join('-'),
          p.peakRssMiB,
          p.afterGc.rssMiB,
          p.afterGc.heapUsedMiB,
          p.initialList.startMs,
          p.initialList.durationMs,
          p.firstFullPassMs,
          p.idle.cpuCores,
          p.steady.cpuCores,
          p.churn.achievedPerSecond,
          p.decision.medianMs,
          p.decision.p99Ms,
          p.decision.fromWatchMedianMs,
          p.decision.fromWatchP99Ms,
          p.decision.firstWriteMedianMs,
          p.decision.decisionWriteMedianMs,
          p.decision.writesPerTrial,
        ]),
      ) +
      `\nAPI requests from the controller (counted by a proxy only the controller uses; response bytes as on the wire)\n` +
      renderTable(
        ['nodes', 'controller env', 'initial LIST pages', 'MiB', 'largest page KiB', 'gzip pages', 'steady LIST/h', 'WATCH/h', 'watch MiB/h', 'other req/h', 'TLS connections/h', 'other: by kind /h'],
        all.map((p) => [
          p.nodes,
          p.variant,
          p.initialList.pages,
          p.initialList.responseMiB,
          p.initialList.largestPageKiB,
          p.initialList.compressedPages,
          p.steady.api.list.requests,
          p.steady.api.watch.requests,
          p.steady.api.watch.responseMiB,
          p.steady.api.other.requests,
          p.steady.api.tlsConnections,
          Object.entries(p.steady.api.byKind)
            .filter(([kind]) => !kind.startsWith('LIST ') && !kind.startsWith('WATCH '))
            .map(([kind, t]) => `${kind} ${t.requests}`)
            .join(', '),
        ]),
      ) +
      `\nFigures at ${referenceCount.toLocaleString('en-US')} nodes against issue 11 (ratio = now / today)\n` +
      renderTable(['figure', 'today', 'now', 'ratio', 'target', ''], figureRows(reference, compared, segments)),
  );
  const path = writeResults('controllerScale', {
    benchmark: 'controllerScale',
    at: new Date().toISOString(),
    machine: machineFacts(),
    controllerSource: source,
    controllerConfig,
    timing,
    today: TODAY,
    target: TARGET,
    growthKiBPerNode: segments,
    points,
    compared,
  });
  process.stdout.write(`results: ${path}\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('controllerScale', main);
