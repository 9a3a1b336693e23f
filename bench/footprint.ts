import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conditionTypeByProbe } from '../common/contract.js';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { startAgent, nodeVersion, projectNode } from './support/agentProcess.js';
import type { BenchOptions } from './support/benchOptions.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchProcess } from './support/benchProcess.js';
import { renderTable, writeResults } from './support/benchOutput.js';
import { absoluteGoal, footprintHeader, footprintRows, goalLine, ratioGoal, type FootprintRow } from './support/footprintReport.js';
import { clockTicksPerSecond, footprintFigures, sampleSideBySide, type FootprintFigures } from './support/footprintSampler.js';
import { PROBE_INTERVAL_SECONDS, shippedMonitors, shippedRuntimeSocket, standaloneAgentConfig } from './support/benchAgentConfig.js';
import type { BenchCluster } from './support/benchCluster.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { InClusterBench } from './support/inClusterAgent.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { loadAverages } from './support/machineLoad.js';
import {
  NPD_SHIPPED_STATS_INTERVAL_SECONDS,
  nodeProblemDetectorBinary,
  nodeProblemDetectorVersion,
  startNodeProblemDetector,
  startNodeProblemDetectorAsShipped,
} from './support/nodeProblemDetector.js';
import { startNodeFloor } from './support/nodeFloor.js';
import { realNodeAgentFootprint } from './support/realNodeFootprint.js';

/**
 * Footprint of our agent against node-problem-detector, side by side in one run:
 * - NPD as its DaemonSet ships it (kernel and read-only monitors on the real /dev/kmsg, the
 *   system-stats monitor, its Kubernetes exporter) beside the in-cluster agent as the DaemonSet
 *   ships it (kernel monitor on the real /dev/kmsg with the built-in rules, restart monitor,
 *   every probe, publishing to the same kube-apiserver): issue 16's goal;
 * - NPD doing our standalone agent's work every 10 s (CPU, memory and disk statistics and one
 *   DNS lookup through a local server) beside the standalone agent: issue 7's comparison.
 * Agents run with the DaemonSet's V8 flags; extra rows show what the flags and the monitors cost.
 */

const INTERVAL_SECONDS = PROBE_INTERVAL_SECONDS;
const WARMUP_SECONDS = 2 * INTERVAL_SECONDS;
const RSS_BUDGET_MIB = 64;
/** Issue 16: the in-cluster agent with the new monitors on, against NPD as shipped, same run. */
const RSS_RATIO_GOAL = 1.25;
const ANON_RATIO_GOAL = 1.5;

/** The V8 flags the DaemonSet runs the agent with (read from its manifest). */
const SHIPPED_FLAGS = daemonSetNodeFlags();

const NPD_SHIPPED = 'NPD as shipped';
const NPD_STANDALONE_WORK = 'NPD doing the standalone work';
const IN_CLUSTER = 'agent in-cluster';
const STANDALONE = 'agent standalone';

/** Standalone agents: as shipped, and without the flags (what they save). */
const standaloneVariants: Array<{ name: string; nodeFlags: string[] }> = [
  { name: STANDALONE, nodeFlags: SHIPPED_FLAGS },
  { name: 'agent standalone without V8 flags', nodeFlags: [] },
];

/** In-cluster agents, each on its own Node object: as shipped, without the monitors (what they cost), without the flags. */
const inClusterVariants: Array<{ name: string; nodeFlags: string[]; monitors: boolean }> = [
  { name: IN_CLUSTER, nodeFlags: SHIPPED_FLAGS, monitors: true },
  { name: 'agent in-cluster, monitors off', nodeFlags: SHIPPED_FLAGS, monitors: false },
  { name: 'agent in-cluster without V8 flags', nodeFlags: [], monitors: true },
];

/** Condition types the in-cluster agents must have published by the end of the run. */
const PUBLISHED_TYPES = Object.values(conditionTypeByProbe).filter((type) => type !== conditionTypeByProbe.runtime);
/** And with the monitors on, these (NPD's names), all False on this machine. */
const MONITOR_TYPES = ['KernelDeadlock', 'ReadonlyFilesystem', 'FrequentKubeletRestart', 'FrequentContainerdRestart'];
/** NPD's exporter publishes its kernel and read-only monitors' conditions. */
const NPD_TYPES = ['KernelDeadlock', 'ReadonlyFilesystem'];
const NPD_NODE = 'npd-node';
const NODE_FLOOR = "Node alone with the agent's builtins";

interface Contender extends FootprintRow {
  mode: 'npd' | 'standalone' | 'in-cluster' | 'floor';
  process: BenchProcess;
  /** Distinct DNS query name and how often it asks, so the DNS server's log shows it did its lookups. */
  dns?: { query: string; everySeconds: number };
  /** Checks after the run that it really did the work. */
  verify: () => Promise<string[]>;
}

async function agentDnsCondition(base: string): Promise<string[]> {
  const body = (await (await fetch(`${base}/conditions`)).json()) as { conditions: Array<{ type: string; status: string; reason: string }> };
  const dns = body.conditions.find((c) => c.type === 'DNSProblem');
  return dns?.status === 'False' ? [] : [`agent DNSProblem is ${JSON.stringify(dns)}, expected False`];
}

async function publishedConditions(cluster: BenchCluster, node: string, types: readonly string[], mustBeFalse: readonly string[]): Promise<string[]> {
  const conditions = await cluster.nodeConditions(node);
  const missing = types.filter((type) => !conditions[type]);
  const problems = missing.length > 0 ? [`${node} lacks published conditions ${missing.join(', ')}`] : [];
  for (const type of mustBeFalse) {
    if (conditions[type] && conditions[type].status !== 'False') problems.push(`${node} ${type} is ${conditions[type].status} (${conditions[type].reason}), expected False`);
  }
  return problems;
}

async function npdDnsCondition(port: number): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const up = /^problem_gauge\{[^}]*type="DNSProblem"[^}]*\} 0$/m.test(text);
  return up ? [] : ['NPD metrics show no problem_gauge{type="DNSProblem"} 0: its DNS plugin did not report a working lookup'];
}

/** NPD's system-stats monitor exports its metric sets; host/uptime is the shipped config's own. */
async function npdSystemStats(port: number): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const missing = ['host_uptime', 'memory_bytes_used', 'cpu_load_1m'].filter((name) => !new RegExp(`^${name}[{ ]`, 'm').test(text));
  return missing.length === 0 ? [] : [`NPD as shipped exports no ${missing.join(', ')}: its system-stats monitor did not run`];
}

export async function runFootprint(options: BenchOptions) {
  const durationSeconds = options.durationSeconds ?? (options.quick ? 60 : 600);
  const ticks = clockTicksPerSecond();
  const npdBinary = nodeProblemDetectorBinary();
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-footprint-'));
  const contenders: Contender[] = [];
  const cleanup: Array<() => unknown> = [];
  const runtime = shippedRuntimeSocket();
  const runtimeSocket = runtime?.present ? runtime.path : undefined;
  try {
    const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
    cleanup.push(() => dns.stop());
    const inCluster = await InClusterBench.start(dns, (line) => process.stderr.write(`footprint: ${line}\n`));
    cleanup.push(() => inCluster.stop());

    await inCluster.cluster.createNode(NPD_NODE);
    const shippedPrometheus = await freeLoopbackPort();
    const shipped = startNodeProblemDetectorAsShipped({
      binary: npdBinary,
      dir,
      prometheusPort: shippedPrometheus,
      kubernetes: { server: inCluster.cluster.plane.server, kubeconfig: inCluster.cluster.plane.kubeconfig, nodeName: NPD_NODE, port: await freeLoopbackPort() },
    });
    contenders.push({
      name: NPD_SHIPPED,
      mode: 'npd',
      process: shipped.process,
      verify: async () => [...(await npdSystemStats(shippedPrometheus)), ...(await publishedConditions(inCluster.cluster, NPD_NODE, NPD_TYPES, NPD_TYPES))],
    });
    for (const [i, variant] of inClusterVariants.entries()) {
      const agent = await inCluster.startAgent({ index: i, dir, nodeFlags: variant.nodeFlags, monitors: variant.monitors ? shippedMonitors() : undefined, runtimeSocket });
      const types = [...PUBLISHED_TYPES, ...(runtimeSocket ? [conditionTypeByProbe.runtime] : []), ...(variant.monitors ? MONITOR_TYPES : [])];
      const mustBeFalse = ['DNSProblem', 'KonnectivityProblem', 'KubeletProblem', ...(variant.monitors ? MONITOR_TYPES : [])];
      contenders.push({
        name: variant.name,
        reference: NPD_SHIPPED,
        mode: 'in-cluster',
        process: agent.process,
        // In-cluster agents keep the DNS probe's default interval (30 s).
        dns: { query: agent.query, everySeconds: 30 },
        verify: async () => [...(await agentDnsCondition(agent.baseUrl)), ...(await publishedConditions(inCluster.cluster, agent.nodeName, types, mustBeFalse))],
      });
    }
    const floor = startNodeFloor({ dir, nodeFlags: SHIPPED_FLAGS });
    contenders.push({
      name: NODE_FLOOR,
      reference: NPD_SHIPPED,
      mode: 'floor',
      process: floor.process,
      verify: async () => (floor.process.running ? [] : [`${NODE_FLOOR} exited: ${floor.process.logTail()}`]),
    });

    const prometheusPort = await freeLoopbackPort();
    const npd = startNodeProblemDetector({
      binary: npdBinary,
      dir,
      intervalSeconds: INTERVAL_SECONDS,
      dns: { host: '127.0.0.1', port: dns.port, query: 'npd.bench.test' },
      prometheusPort,
    });
    contenders.push({ name: NPD_STANDALONE_WORK, mode: 'npd', process: npd.process, dns: { query: 'npd.bench.test', everySeconds: INTERVAL_SECONDS }, verify: () => npdDnsCondition(prometheusPort) });
    for (const [i, variant] of standaloneVariants.entries()) {
      const port = await freeLoopbackPort();
      const query = `agent${i}.bench.test`;
      const process = startAgent({ name: `agent${i}`, dir, config: standaloneAgentConfig({ port, dnsServer: dns.address, query }), nodeFlags: variant.nodeFlags });
      contenders.push({
        name: variant.name,
        reference: NPD_STANDALONE_WORK,
        mode: 'standalone',
        process,
        dns: { query, everySeconds: INTERVAL_SECONDS },
        verify: () => agentDnsCondition(`http://127.0.0.1:${port}`),
      });
    }
    process.stderr.write(`footprint: ${contenders.length} processes side by side for ${durationSeconds} s (logs in ${dir})\n`);
    const loadBefore = loadAverages();
    let minutesShown = 0;
    const series = await sampleSideBySide(
      Object.fromEntries(contenders.map((c) => [c.name, c.process.pid])),
      durationSeconds,
      ticks,
      (at) => {
        if (Math.floor(at / 60) <= minutesShown) return;
        minutesShown = Math.floor(at / 60);
        process.stderr.write(`footprint: ${minutesShown} min of ${(durationSeconds / 60).toFixed(1)}\n`);
      },
    );
    const loadAfter = loadAverages();
    const problems: string[] = [];
    for (const c of contenders) {
      problems.push(...(await c.verify().catch((err: Error) => [`${c.name}: ${err.message}`])));
      if (!c.dns) continue;
      const { query, everySeconds } = c.dns;
      const lookups = dns.queries.filter((q) => q.name === query).length;
      const expected = Math.floor(durationSeconds / everySeconds);
      if (lookups < expected) problems.push(`${c.name} made ${lookups} DNS lookups, expected at least ${expected}`);
    }
    if (problems.length > 0) throw new Error(`the run did not do the work it measures:\n  ${problems.join('\n  ')}\n(logs in ${dir})`);

    const figures: Record<string, FootprintFigures & { mode: Contender['mode'] }> = {};
    for (const c of contenders) figures[c.name] = { mode: c.mode, ...footprintFigures(series[c.name] ?? [], WARMUP_SECONDS) };
    const rows: FootprintRow[] = contenders.map(({ name, reference }) => (reference === undefined ? { name } : { name, reference }));
    return { durationSeconds, figures, rows, dir, load: { before: loadBefore, after: loadAfter }, runtime, floorBuiltins: floor.builtins };
  } finally {
    for (const c of contenders) await c.process.stop();
    for (const step of cleanup.reverse()) await step();
  }
}

export async function main(options: BenchOptions): Promise<void> {
  const run = await runFootprint(options);
  const figures = (name: string) => run.figures[name] as FootprintFigures;
  const load = (l: [number, number, number]) => l.map((n) => n.toFixed(2)).join(' ');
  const runtimeNote = !run.runtime
    ? 'the shipped config has the runtime probe off'
    : run.runtime.present
      ? `runtime probe on (${run.runtime.path})`
      : `runtime probe off: no CRI socket at ${run.runtime.path} on this machine`;
  process.stdout.write(
    `\nFootprint, ${run.durationSeconds} s side by side; load average ${load(run.load.before)} at the start, ${load(run.load.after)} at the end.\n` +
      `NPD as shipped: kernel-monitor.json + readonly-monitor.json on /dev/kmsg, system-stats monitor (every ${NPD_SHIPPED_STATS_INTERVAL_SECONDS} s, osFeature left out), k8s exporter.\n` +
      `In-cluster agents: every probe at its default interval, kernel + restart monitors as shipped (unless "monitors off"), publishing to the same kube-apiserver; ${runtimeNote}.\n` +
      `${NODE_FLOOR}: the DaemonSet's Node with its flags, loading ${run.floorBuiltins.map((b) => `${b.name} (${b.how})`).join(', ')} (what dist/agent/cli.js loads, as it loads them, and what listen and a host name load) and running nothing: the runtime's share of a ratio.\n` +
      `NPD doing the standalone work and standalone agents: every ${INTERVAL_SECONDS} s cpu, memory, disk stats + 1 DNS lookup (local server). Ratios: to the row named in "compared with".\n` +
      renderTable(footprintHeader, footprintRows(run.rows, run.figures)),
  );
  const npdShipped = figures(NPD_SHIPPED);
  const inCluster = figures(IN_CLUSTER);
  const standalone = figures(STANDALONE);
  const npdWork = figures(NPD_STANDALONE_WORK);
  const floor = figures(NODE_FLOOR);
  const goals = [
    ratioGoal('issue 16: in-cluster steady RSS / NPD as shipped', inCluster.steadyRssMiB, npdShipped.steadyRssMiB, RSS_RATIO_GOAL),
    ratioGoal('issue 16: in-cluster steady anon / NPD as shipped', inCluster.steadyAnonMiB, npdShipped.steadyAnonMiB, ANON_RATIO_GOAL),
    ratioGoal(`the same goals for ${NODE_FLOOR}: RSS / NPD as shipped`, floor.steadyRssMiB, npdShipped.steadyRssMiB, RSS_RATIO_GOAL),
    ratioGoal(`the same goals for ${NODE_FLOOR}: anon / NPD as shipped`, floor.steadyAnonMiB, npdShipped.steadyAnonMiB, ANON_RATIO_GOAL),
    absoluteGoal('in-cluster steady RSS', inCluster.steadyRssMiB, RSS_BUDGET_MIB),
    ratioGoal("issue 7: standalone steady RSS / NPD doing its work", standalone.steadyRssMiB, npdWork.steadyRssMiB, 1),
    ratioGoal("issue 7: standalone CPU / NPD doing its work", standalone.cpuSecondsPerHour, npdWork.cpuSecondsPerHour, 0.5),
  ];
  process.stdout.write(`V8 flags from the DaemonSet: ${SHIPPED_FLAGS.join(' ')}\n${goals.map((g) => `${goalLine(g)}\n`).join('')}`);
  const results = {
    benchmark: 'footprint',
    at: new Date().toISOString(),
    machine: machineFacts(),
    load: run.load,
    node: nodeVersion(projectNode()),
    npd: nodeProblemDetectorVersion(nodeProblemDetectorBinary()),
    intervalSeconds: INTERVAL_SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    durationSeconds: run.durationSeconds,
    rssBudgetMiB: RSS_BUDGET_MIB,
    daemonSetFlags: SHIPPED_FLAGS,
    runtime: run.runtime ?? null,
    goals,
    rows: run.rows,
    processes: run.figures,
  };
  // Written before the real-node part, which starts a cluster of its own and can fail apart.
  process.stdout.write(`results: ${writeResults('footprint', results)}\n`);
  // The same agent as a DaemonSet pod on a real kubelet + containerd node: what the kubelet
  // accounts to its container (and evicts or OOM-kills on) beside the process's RSS.
  const realNode = await realNodeAgentFootprint(run.durationSeconds, (line) => process.stderr.write(`footprint: ${line}\n`));
  process.stdout.write(
    `\nThe agent container on a real node (kubelet + containerd, the DaemonSet as shipped), ${realNode.samples} samples of the kubelet's /stats/summary\n` +
      renderTable(
        ['agent container', 'working set MiB', 'cgroup usage', 'cgroup rss', 'process RSS', 'request', 'limit'],
        [['as shipped', realNode.workingSetMiB, realNode.cgroupUsageMiB, realNode.cgroupRssMiB, realNode.processRssMiB, realNode.requestMiB, realNode.limitMiB]],
      ) +
      `requests/limits: working set ${realNode.workingSetMiB} MiB against the ${realNode.requestMiB} MiB request and the ${realNode.limitMiB} MiB limit: ` +
      `${realNode.workingSetMiB <= realNode.limitMiB ? 'within the limit' : 'OVER THE LIMIT'}, ${realNode.workingSetMiB <= realNode.requestMiB ? 'within the request' : 'above the request'}\n`,
  );
  process.stdout.write(`results with the real node: ${writeResults('footprint', { ...results, realNode })}\n`);
  rmSync(run.dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('footprint', main);
