import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { nodeVersion, projectNode, startAgent, waitForOk } from './support/agentProcess.js';
import type { BenchProcess } from './support/benchProcess.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { InClusterBench } from './support/inClusterAgent.js';
import { PROBE_INTERVAL_SECONDS, standaloneAgentConfig } from './support/benchAgentConfig.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { renderTable, repoRoot, writeResults } from './support/benchOutput.js';
import { codeByPackage } from './support/heapSnapshotCode.js';
import { agentImportSteps, measureImportCost } from './support/importCost.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';

/**
 * Where the agent's memory goes: what each dependency adds when imported, and, in a running
 * agent after a few probe rounds, the V8 heap by space and the compiled code and source by
 * package (from a heap snapshot). Pairs with footprint.ts, which measures the totals.
 */

const MiB = 2 ** 20;
const mib = (bytes: number) => Number((bytes / MiB).toFixed(2));

interface MemoryReport {
  memoryUsage: NodeJS.MemoryUsage;
  heapSpaces: Array<{ space_name: string; space_size: number; space_used_size: number; physical_space_size: number }>;
  heapCode: { code_and_metadata_size: number; bytecode_and_metadata_size: number; external_script_source_size: number };
  status: string;
  threads: number;
  snapshot: string;
}

interface StartedAgent {
  process: BenchProcess;
  baseUrl: string;
}

/** Starts an agent through `start` with the memory-report preload, lets it do `rounds` probe rounds, and asks for the report. */
async function runningAgentReport(
  dir: string,
  name: string,
  rounds: number,
  start: (nodeFlags: string[], env: NodeJS.ProcessEnv) => Promise<StartedAgent>,
): Promise<MemoryReport> {
  const reportPath = join(dir, `${name}-memory.json`);
  const preload = new URL('./support/memoryReportPreload.js', import.meta.url).href;
  const agent = await start([`--import=${preload}`], { NODEPULSE_MEMORY_REPORT: reportPath });
  try {
    await waitForOk(`${agent.baseUrl}/readyz`, 60_000, agent.process);
    await new Promise((resolve) => setTimeout(resolve, rounds * PROBE_INTERVAL_SECONDS * 1000));
    agent.process.child.kill('SIGUSR2');
    const deadline = Date.now() + 60_000;
    while (!existsSync(reportPath)) {
      if (Date.now() > deadline || !agent.process.running) throw new Error(`${name} wrote no memory report:\n${agent.process.logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return JSON.parse(readFileSync(reportPath, 'utf8')) as MemoryReport;
  } finally {
    await agent.process.stop();
  }
}

function summarise(report: MemoryReport) {
  return {
    process: {
      rssMiB: statusMiB(report.status, 'VmRSS'),
      anonMiB: statusMiB(report.status, 'RssAnon'),
      fileMiB: statusMiB(report.status, 'RssFile'),
      threads: report.threads,
    },
    heap: {
      heapTotalMiB: mib(report.memoryUsage.heapTotal),
      heapUsedMiB: mib(report.memoryUsage.heapUsed),
      externalMiB: mib(report.memoryUsage.external),
      arrayBuffersMiB: mib(report.memoryUsage.arrayBuffers),
      codeAndMetadataMiB: mib(report.heapCode.code_and_metadata_size),
      bytecodeAndMetadataMiB: mib(report.heapCode.bytecode_and_metadata_size),
      externalScriptSourceMiB: mib(report.heapCode.external_script_source_size),
      spaces: report.heapSpaces
        .filter((s) => s.space_size > 0)
        .map((s) => ({ space: s.space_name, sizeMiB: mib(s.space_size), usedMiB: mib(s.space_used_size), residentMiB: mib(s.physical_space_size) })),
    },
    codeByPackage: codeByPackage(report.snapshot),
  };
}

const statusMiB = (status: string, key: string) => mib(Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024);

export async function main(options: BenchOptions): Promise<void> {
  const node = projectNode();
  const flags = daemonSetNodeFlags();
  const imports = measureImportCost(node, flags, agentImportSteps(repoRoot()));
  process.stdout.write(
    `\nImport cost in a fresh Node with the DaemonSet's flags (${flags.join(' ')}), after full GC: RSS MiB after each step, and what it added\n` +
      renderTable(
        ['step', 'anon', 'file', '+anon', '+file'],
        imports.map((s) => [s.step, s.anonMiB, s.fileMiB, s.addedAnonMiB, s.addedFileMiB]),
      ),
  );

  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-agent-memory-'));
  const rounds = options.quick ? 2 : 6;
  const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
  const reports: Record<string, ReturnType<typeof summarise>> = {};
  try {
    const standalone = await runningAgentReport(dir, 'standalone', rounds, async (nodeFlags, env) => {
      const port = await freeLoopbackPort();
      const config = standaloneAgentConfig({ port, dnsServer: dns.address, query: 'memory.bench.test' });
      return { process: startAgent({ name: 'standalone', dir, config, nodeFlags: [...flags, ...nodeFlags], env }), baseUrl: `http://127.0.0.1:${port}` };
    });
    reports.standalone = summarise(standalone);
    const inCluster = await InClusterBench.start(dns, (line) => process.stderr.write(`agentMemory: ${line}\n`));
    try {
      const report = await runningAgentReport(dir, 'in-cluster', rounds, (nodeFlags, env) => inCluster.startAgent({ index: 0, dir, nodeFlags: [...flags, ...nodeFlags], env }));
      reports['in-cluster'] = summarise(report);
    } finally {
      await inCluster.stop();
    }
  } finally {
    await dns.stop();
  }
  for (const [mode, r] of Object.entries(reports)) {
    process.stdout.write(
      `\nRunning ${mode} agent after ${rounds} probe rounds: RSS ${r.process.rssMiB} MiB = anon ${r.process.anonMiB} + file ${r.process.fileMiB}, ${r.process.threads} threads\n` +
        `V8 heap ${r.heap.heapUsedMiB} used of ${r.heap.heapTotalMiB} MiB; external ${r.heap.externalMiB} MiB\n` +
        renderTable(['heap space', 'size MiB', 'used MiB', 'resident MiB'], r.heap.spaces.map((s) => [s.space, s.sizeMiB, s.usedMiB, s.residentMiB])) +
        `\nCompiled code and source on the heap, by package (${mode} agent, heap snapshot)\n` +
        renderTable(
          ['package', 'functions', 'code KiB', 'source KiB'],
          r.codeByPackage.slice(0, 15).map((c) => [c.package, c.functions, Math.round(c.codeBytes / 1024), Math.round(c.sourceBytes / 1024)]),
        ),
    );
  }
  const path = writeResults('agentMemory', {
    benchmark: 'agentMemory',
    at: new Date().toISOString(),
    machine: machineFacts(),
    node: nodeVersion(node),
    daemonSetFlags: flags,
    imports,
    rounds,
    runningAgents: reports,
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('agentMemory', main);
