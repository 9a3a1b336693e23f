import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { nodeVersion, projectNode, startAgent, waitForOk } from './support/agentProcess.js';
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

/** Runs the standalone agent with the memory-report preload, lets it do `rounds` probe rounds, and asks for the report. */
async function runningAgentReport(dir: string, rounds: number): Promise<MemoryReport> {
  const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
  const port = await freeLoopbackPort();
  const reportPath = join(dir, 'memory-report.json');
  const preload = new URL('./support/memoryReportPreload.js', import.meta.url).href;
  const agent = startAgent({
    name: 'agent',
    dir,
    config: standaloneAgentConfig({ port, dnsServer: dns.address, query: 'memory.bench.test' }),
    nodeFlags: [`--import=${preload}`],
    env: { NODEPULSE_MEMORY_REPORT: reportPath },
  });
  try {
    await waitForOk(`http://127.0.0.1:${port}/readyz`, 30_000, agent);
    await new Promise((resolve) => setTimeout(resolve, rounds * PROBE_INTERVAL_SECONDS * 1000));
    agent.child.kill('SIGUSR2');
    const deadline = Date.now() + 60_000;
    while (!existsSync(reportPath)) {
      if (Date.now() > deadline || !agent.running) throw new Error(`the agent wrote no memory report:\n${agent.logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return JSON.parse(readFileSync(reportPath, 'utf8')) as MemoryReport;
  } finally {
    await agent.stop();
    await dns.stop();
  }
}

const statusMiB = (status: string, key: string) => mib(Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024);

export async function main(options: BenchOptions): Promise<void> {
  const node = projectNode();
  const imports = measureImportCost(node, [], agentImportSteps(repoRoot()));
  process.stdout.write(
    '\nImport cost in a fresh Node (after full GC): RSS MiB after each step, and what the step added\n' +
      renderTable(
        ['step', 'anon', 'file', '+anon', '+file'],
        imports.map((s) => [s.step, s.anonMiB, s.fileMiB, s.addedAnonMiB, s.addedFileMiB]),
      ),
  );

  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-agent-memory-'));
  const rounds = options.quick ? 2 : 6;
  const report = await runningAgentReport(dir, rounds);
  const code = codeByPackage(report.snapshot);
  const process_ = {
    rssMiB: statusMiB(report.status, 'VmRSS'),
    anonMiB: statusMiB(report.status, 'RssAnon'),
    fileMiB: statusMiB(report.status, 'RssFile'),
    threads: report.threads,
  };
  const heap = {
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
  };
  process.stdout.write(
    `\nRunning standalone agent after ${rounds} probe rounds: RSS ${process_.rssMiB} MiB = anon ${process_.anonMiB} + file ${process_.fileMiB}, ${process_.threads} threads\n` +
      `V8 heap ${heap.heapUsedMiB} used of ${heap.heapTotalMiB} MiB; external ${heap.externalMiB} MiB\n` +
      renderTable(['heap space', 'size MiB', 'used MiB', 'resident MiB'], heap.spaces.map((s) => [s.space, s.sizeMiB, s.usedMiB, s.residentMiB])) +
      '\nCompiled code and source on the heap, by package (heap snapshot)\n' +
      renderTable(
        ['package', 'functions', 'code KiB', 'source KiB'],
        code.slice(0, 15).map((c) => [c.package, c.functions, Math.round(c.codeBytes / 1024), Math.round(c.sourceBytes / 1024)]),
      ),
  );
  const path = writeResults('agentMemory', {
    benchmark: 'agentMemory',
    at: new Date().toISOString(),
    machine: machineFacts(),
    node: nodeVersion(node),
    imports,
    runningAgent: { rounds, process: process_, heap, codeByPackage: code },
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('agentMemory', main);
