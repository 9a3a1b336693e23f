import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conditionTypeByProbe } from '../common/contract.js';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { startAgent, nodeVersion, projectNode } from './support/agentProcess.js';
import type { BenchOptions } from './support/benchOptions.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchProcess } from './support/benchProcess.js';
import { ratio, renderTable, writeResults } from './support/benchOutput.js';
import { clockTicksPerSecond, footprintFigures, sampleSideBySide, type FootprintFigures } from './support/footprintSampler.js';
import { PROBE_INTERVAL_SECONDS, standaloneAgentConfig } from './support/benchAgentConfig.js';
import type { BenchCluster } from './support/benchCluster.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { InClusterBench } from './support/inClusterAgent.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { nodeProblemDetectorBinary, nodeProblemDetectorVersion, startNodeProblemDetector } from './support/nodeProblemDetector.js';
import { realNodeAgentFootprint } from './support/realNodeFootprint.js';

/**
 * Footprint of our agent against node-problem-detector, side by side in one run, doing the same
 * work every 10 s: CPU, memory and disk statistics and one DNS lookup through a local server.
 * Agents run with the DaemonSet's V8 flags; extra rows show what the flags save.
 */

const INTERVAL_SECONDS = PROBE_INTERVAL_SECONDS;
const WARMUP_SECONDS = 2 * INTERVAL_SECONDS;
const RSS_BUDGET_MIB = 64;

/** The V8 flags the DaemonSet runs the agent with (read from its manifest). */
const SHIPPED_FLAGS = daemonSetNodeFlags();

/** Standalone agents: as shipped, and without the flags (what they save). */
const standaloneVariants: Array<{ name: string; nodeFlags: string[] }> = [
  { name: 'agent', nodeFlags: SHIPPED_FLAGS },
  { name: 'agent without V8 flags', nodeFlags: [] },
];

/** In-cluster agents: every probe on, publisher running, each on its own Node object. */
const inClusterVariants: Array<{ name: string; nodeFlags: string[] }> = [
  { name: 'agent in-cluster', nodeFlags: SHIPPED_FLAGS },
  { name: 'agent in-cluster without V8 flags', nodeFlags: [] },
];

/** Condition types the in-cluster agents must have published by the end of the run. */
const PUBLISHED_TYPES = Object.values(conditionTypeByProbe);

interface Contender {
  name: string;
  mode: 'npd' | 'standalone' | 'in-cluster';
  process: BenchProcess;
  /** Distinct query name, so the DNS server's log shows each one did its lookups. */
  query: string;
  /** Checks after the run that it really did the work. */
  verify: () => Promise<string[]>;
}

async function agentDnsCondition(base: string): Promise<string[]> {
  const body = (await (await fetch(`${base}/conditions`)).json()) as { conditions: Array<{ type: string; status: string; reason: string }> };
  const dns = body.conditions.find((c) => c.type === 'DNSProblem');
  return dns?.status === 'False' ? [] : [`agent DNSProblem is ${JSON.stringify(dns)}, expected False`];
}

async function publishedConditions(cluster: BenchCluster, node: string): Promise<string[]> {
  const conditions = await cluster.nodeConditions(node);
  const missing = PUBLISHED_TYPES.filter((type) => !conditions[type]);
  const problems = missing.length > 0 ? [`${node} lacks published conditions ${missing.join(', ')}`] : [];
  for (const type of ['DNSProblem', 'KonnectivityProblem', 'KubeletProblem'] as const) {
    if (conditions[type] && conditions[type].status !== 'False') problems.push(`${node} ${type} is ${conditions[type].status} (${conditions[type].reason}), expected False`);
  }
  return problems;
}

async function npdDnsCondition(port: number): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const up = /^problem_gauge\{[^}]*type="DNSProblem"[^}]*\} 0$/m.test(text);
  return up ? [] : ['NPD metrics show no problem_gauge{type="DNSProblem"} 0: its DNS plugin did not report a working lookup'];
}

export async function runFootprint(options: BenchOptions) {
  const durationSeconds = options.durationSeconds ?? (options.quick ? 60 : 600);
  const ticks = clockTicksPerSecond();
  const npdBinary = nodeProblemDetectorBinary();
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-footprint-'));
  const contenders: Contender[] = [];
  const cleanup: Array<() => unknown> = [];
  try {
    const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
    cleanup.push(() => dns.stop());
    const inCluster = await InClusterBench.start(dns, (line) => process.stderr.write(`footprint: ${line}\n`));
    cleanup.push(() => inCluster.stop());

    const prometheusPort = await freeLoopbackPort();
    const npd = startNodeProblemDetector({
      binary: npdBinary,
      dir,
      intervalSeconds: INTERVAL_SECONDS,
      dns: { host: '127.0.0.1', port: dns.port, query: 'npd.bench.test' },
      prometheusPort,
    });
    contenders.push({ name: 'node-problem-detector', mode: 'npd', process: npd.process, query: 'npd.bench.test', verify: () => npdDnsCondition(prometheusPort) });
    for (const [i, variant] of standaloneVariants.entries()) {
      const port = await freeLoopbackPort();
      const query = `agent${i}.bench.test`;
      const process = startAgent({ name: `agent${i}`, dir, config: standaloneAgentConfig({ port, dnsServer: dns.address, query }), nodeFlags: variant.nodeFlags });
      contenders.push({ name: variant.name, mode: 'standalone', process, query, verify: () => agentDnsCondition(`http://127.0.0.1:${port}`) });
    }
    for (const [i, variant] of inClusterVariants.entries()) {
      const agent = await inCluster.startAgent({ index: i, dir, nodeFlags: variant.nodeFlags });
      contenders.push({
        name: variant.name,
        mode: 'in-cluster',
        process: agent.process,
        query: agent.query,
        verify: async () => [...(await agentDnsCondition(agent.baseUrl)), ...(await publishedConditions(inCluster.cluster, agent.nodeName))],
      });
    }
    process.stderr.write(`footprint: ${contenders.length} processes side by side for ${durationSeconds} s (logs in ${dir})\n`);
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
    const problems: string[] = [];
    for (const c of contenders) {
      problems.push(...(await c.verify().catch((err: Error) => [`${c.name}: ${err.message}`])));
      const lookups = dns.queries.filter((q) => q.name === c.query).length;
      // In-cluster agents keep the DNS probe's default interval (30 s).
      const expected = Math.floor(durationSeconds / (c.mode === 'in-cluster' ? 30 : INTERVAL_SECONDS));
      if (lookups < expected) problems.push(`${c.name} made ${lookups} DNS lookups, expected at least ${expected}`);
    }
    if (problems.length > 0) throw new Error(`the run did not do the work it measures:\n  ${problems.join('\n  ')}\n(logs in ${dir})`);

    const figures: Record<string, FootprintFigures & { mode: Contender['mode'] }> = {};
    for (const c of contenders) figures[c.name] = { mode: c.mode, ...footprintFigures(series[c.name] ?? [], WARMUP_SECONDS) };
    return { durationSeconds, figures, dir };
  } finally {
    for (const c of contenders) await c.process.stop();
    for (const step of cleanup.reverse()) await step();
  }
}

export async function main(options: BenchOptions): Promise<void> {
  const run = await runFootprint(options);
  const npd = run.figures['node-problem-detector'] as FootprintFigures;
  const rows = Object.entries(run.figures).map(([name, f]) => [
    name,
    f.steadyRssMiB,
    f.steadyAnonMiB,
    f.steadyFileMiB,
    f.peakRssMiB,
    f.cpuSecondsPerHour,
    ratio(f.steadyRssMiB, npd.steadyRssMiB),
    ratio(f.peakRssMiB, npd.peakRssMiB),
    ratio(f.cpuSecondsPerHour, npd.cpuSecondsPerHour),
  ]);
  process.stdout.write(
    `\nFootprint, ${run.durationSeconds} s side by side. NPD and standalone agents every ${INTERVAL_SECONDS} s: cpu, memory, disk stats + 1 DNS lookup (local server);\n` +
        `in-cluster agents: every probe at its default interval, publishing to a local kube-apiserver\n` +
      renderTable(['process', 'steady RSS MiB', 'anon', 'file', 'peak RSS MiB', 'CPU s/h', 'RSS/NPD', 'peak/NPD', 'CPU/NPD'], rows),
  );
  const agent = run.figures.agent as FootprintFigures;
  const inCluster = run.figures['agent in-cluster'] as FootprintFigures;
  const targets = {
    inClusterSteadyRssWithinBudget: inCluster.steadyRssMiB <= RSS_BUDGET_MIB,
    steadyRssAtMostNpd: agent.steadyRssMiB <= npd.steadyRssMiB,
    cpuAtMostHalfOfNpd: agent.cpuSecondsPerHour <= npd.cpuSecondsPerHour / 2,
  };
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  process.stdout.write(`V8 flags from the DaemonSet: ${SHIPPED_FLAGS.join(' ')}\n`);
  process.stdout.write(
    `targets (as shipped): in-cluster steady RSS ${inCluster.steadyRssMiB} <= ${RSS_BUDGET_MIB} MiB: ${verdict(targets.inClusterSteadyRssWithinBudget)}; ` +
      `standalone steady RSS <= NPD's: ${verdict(targets.steadyRssAtMostNpd)}; CPU <= half of NPD's: ${verdict(targets.cpuAtMostHalfOfNpd)}\n`,
  );
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
  const path = writeResults('footprint', {
    benchmark: 'footprint',
    at: new Date().toISOString(),
    machine: machineFacts(),
    node: nodeVersion(projectNode()),
    npd: nodeProblemDetectorVersion(nodeProblemDetectorBinary()),
    intervalSeconds: INTERVAL_SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    durationSeconds: run.durationSeconds,
    rssBudgetMiB: RSS_BUDGET_MIB,
    daemonSetFlags: SHIPPED_FLAGS,
    targets,
    processes: run.figures,
    realNode,
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(run.dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('footprint', main);
