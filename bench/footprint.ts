import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { startAgent, nodeVersion, projectNode } from './support/agentProcess.js';
import type { BenchOptions } from './support/benchOptions.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchProcess } from './support/benchProcess.js';
import { ratio, renderTable, writeResults } from './support/benchOutput.js';
import { clockTicksPerSecond, footprintFigures, sampleSideBySide, type FootprintFigures } from './support/footprintSampler.js';
import { PROBE_INTERVAL_SECONDS, standaloneAgentConfig } from './support/benchAgentConfig.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { nodeProblemDetectorBinary, nodeProblemDetectorVersion, startNodeProblemDetector } from './support/nodeProblemDetector.js';

/**
 * Footprint of our agent against node-problem-detector, side by side in one run, doing the same
 * work every 10 s: CPU, memory and disk statistics and one DNS lookup through a local server.
 * Extra agent rows run the same config under cheap V8 memory flags, to measure what they save.
 */

const INTERVAL_SECONDS = PROBE_INTERVAL_SECONDS;
const WARMUP_SECONDS = 2 * INTERVAL_SECONDS;
const RSS_BUDGET_MIB = 64;

/** Agent variants measured beside the default one: V8 flags that trade speed for memory. */
const agentVariants: Array<{ name: string; nodeFlags: string[] }> = [
  { name: 'agent --max-semi-space-size=1', nodeFlags: ['--max-semi-space-size=1'] },
  { name: 'agent --lite-mode', nodeFlags: ['--lite-mode'] },
  { name: 'agent --max-semi-space-size=1 --lite-mode', nodeFlags: ['--max-semi-space-size=1', '--lite-mode'] },
];

interface Contender {
  name: string;
  process: BenchProcess;
  /** Distinct query name, so the DNS server's log shows each one did its lookups. */
  query: string;
  /** Checks after the run that it really did the work. */
  verify: () => Promise<string[]>;
}

async function agentDnsCondition(port: number): Promise<string[]> {
  const body = (await (await fetch(`http://127.0.0.1:${port}/conditions`)).json()) as { conditions: Array<{ type: string; status: string; reason: string }> };
  const dns = body.conditions.find((c) => c.type === 'DNSProblem');
  return dns?.status === 'False' ? [] : [`agent DNSProblem is ${JSON.stringify(dns)}, expected False`];
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
  const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
  const contenders: Contender[] = [];
  try {
    const prometheusPort = await freeLoopbackPort();
    const npd = startNodeProblemDetector({
      binary: npdBinary,
      dir,
      intervalSeconds: INTERVAL_SECONDS,
      dns: { host: '127.0.0.1', port: dns.port, query: 'npd.bench.test' },
      prometheusPort,
    });
    contenders.push({ name: 'node-problem-detector', process: npd.process, query: 'npd.bench.test', verify: () => npdDnsCondition(prometheusPort) });
    for (const [i, variant] of [{ name: 'agent', nodeFlags: [] }, ...agentVariants].entries()) {
      const port = await freeLoopbackPort();
      const query = `agent${i}.bench.test`;
      const process = startAgent({ name: `agent${i}`, dir, config: standaloneAgentConfig({ port, dnsServer: dns.address, query }), nodeFlags: variant.nodeFlags });
      contenders.push({ name: variant.name, process, query, verify: () => agentDnsCondition(port) });
    }

    process.stderr.write(`footprint: ${contenders.length} processes side by side for ${durationSeconds} s (logs in ${dir})\n`);
    const series = await sampleSideBySide(
      Object.fromEntries(contenders.map((c) => [c.name, c.process.pid])),
      durationSeconds,
      ticks,
      (at) => {
        if (Math.round(at) % 60 === 0 && at > 1) process.stderr.write(`footprint: ${Math.round(at)} s\n`);
      },
    );
    const problems: string[] = [];
    for (const c of contenders) {
      problems.push(...(await c.verify().catch((err: Error) => [`${c.name}: ${err.message}`])));
      const lookups = dns.queries.filter((q) => q.name === c.query).length;
      const expected = Math.floor(durationSeconds / INTERVAL_SECONDS);
      if (lookups < expected) problems.push(`${c.name} made ${lookups} DNS lookups, expected at least ${expected}`);
    }
    if (problems.length > 0) throw new Error(`the run did not do the work it measures:\n  ${problems.join('\n  ')}\n(logs in ${dir})`);

    const figures: Record<string, FootprintFigures> = {};
    for (const c of contenders) figures[c.name] = footprintFigures(series[c.name] ?? [], WARMUP_SECONDS);
    return { durationSeconds, figures, dir };
  } finally {
    for (const c of contenders) await c.process.stop();
    await dns.stop();
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
    `\nFootprint, ${run.durationSeconds} s side by side, every ${INTERVAL_SECONDS} s: cpu, memory, disk stats + 1 DNS lookup (local server)\n` +
      renderTable(['process', 'steady RSS MiB', 'anon', 'file', 'peak RSS MiB', 'CPU s/h', 'RSS/NPD', 'peak/NPD', 'CPU/NPD'], rows),
  );
  const agent = run.figures.agent as FootprintFigures;
  const targets = {
    steadyRssAtMostNpd: agent.steadyRssMiB <= npd.steadyRssMiB,
    cpuAtMostHalfOfNpd: agent.cpuSecondsPerHour <= npd.cpuSecondsPerHour / 2,
  };
  process.stdout.write(
    `targets: steady RSS <= NPD's: ${targets.steadyRssAtMostNpd ? 'met' : 'MISSED'}; CPU <= half of NPD's: ${targets.cpuAtMostHalfOfNpd ? 'met' : 'MISSED'}\n`,
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
    targets,
    processes: run.figures,
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(run.dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('footprint', main);
