import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { startAgent, waitForOk } from './support/agentProcess.js';
import { parseWriteCounts, writesBetween, type WriteCounts } from './support/apiserverWrites.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { BenchCluster } from './support/benchCluster.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import type { BenchProcess } from './support/benchProcess.js';
import { ratio, renderTable, writeResults } from './support/benchOutput.js';
import { KubeletStandIn } from './support/kubeletStandIn.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { nodeProblemDetectorBinary, nodeProblemDetectorVersion, startNodeProblemDetector } from './support/nodeProblemDetector.js';

/**
 * API write cost per node: our agent and node-problem-detector's Kubernetes exporter, both at
 * their default heartbeat (5 min) and event settings, each against its own kube-apiserver so
 * that each server's /metrics counts one client only; both run at the same time through the
 * same phases: steady state, a probe that fails every other sample, and a slow flap.
 */

const DNS_INTERVAL_SECONDS = 10;
const SLOW_FLAP_HALF_PERIOD_SECONDS = 60;
/** Start-up writes (initial conditions, first events) are left out of every phase. */
const SETTLE_SECONDS = 30;

interface Contender {
  name: string;
  cluster: BenchCluster;
  dns: TestDnsServer;
  process?: BenchProcess;
}

interface Phase {
  name: string;
  seconds: number;
  /** Drives the DNS servers during the phase; resolves when the phase is over. */
  run: (contenders: Contender[], seconds: number) => Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function writeCounts(cluster: BenchCluster): Promise<WriteCounts> {
  return parseWriteCounts(await cluster.plane.kubectl(['get', '--raw', '/metrics']));
}

/** Every lookup answered the opposite way to the one before: fail, ok, fail, ok. */
async function alternateEveryLookup(contenders: Contender[], seconds: number): Promise<void> {
  const seen = contenders.map((c) => c.dns.queries.length);
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    contenders.forEach((c, i) => {
      if (c.dns.queries.length === seen[i]) return;
      seen[i] = c.dns.queries.length;
      // Flip for the next lookup: the failing one is the next after a good one.
      c.dns.setMode(c.dns.queries.length % 2 === 0 ? 'answer' : 'servfail');
    });
    await sleep(100);
  }
  for (const c of contenders) c.dns.setMode('answer');
}

async function slowFlap(contenders: Contender[], seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  for (let failing = true; Date.now() < end; failing = !failing) {
    for (const c of contenders) c.dns.setMode(failing ? 'servfail' : 'answer');
    await sleep(Math.min(SLOW_FLAP_HALF_PERIOD_SECONDS * 1000, end - Date.now()));
  }
  for (const c of contenders) c.dns.setMode('answer');
}

function agentConfig(options: { nodeName: string; kubeconfig: string; port: number; dnsServer: string; kubeletUrl: string }) {
  return {
    nodeName: options.nodeName,
    kubeconfig: options.kubeconfig,
    server: { address: '127.0.0.1', port: options.port },
    publish: { enabled: true },
    probes: {
      dns: { intervalSeconds: DNS_INTERVAL_SECONDS, checks: [{ name: 'BenchDNS', server: options.dnsServer, query: 'kubernetes.default.svc.cluster.local' }] },
      kubelet: { url: options.kubeletUrl },
      konnectivity: { enabled: false },
    },
  };
}

export async function main(options: BenchOptions): Promise<void> {
  const steadySeconds = options.durationSeconds ?? (options.quick ? 120 : 900);
  const phases: Phase[] = [
    { name: 'steady state', seconds: steadySeconds, run: async (_c, seconds) => void (await sleep(seconds * 1000)) },
    { name: 'DNS fails every other lookup', seconds: options.quick ? 60 : 300, run: alternateEveryLookup },
    { name: `DNS down/up every ${SLOW_FLAP_HALF_PERIOD_SECONDS} s`, seconds: options.quick ? 120 : 480, run: slowFlap },
  ];
  const log = (line: string) => process.stderr.write(`apiWriteCost: ${line}\n`);
  const npdBinary = nodeProblemDetectorBinary();
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-writes-'));
  const kubelet = await KubeletStandIn.start();
  const contenders: Contender[] = [];
  const results: Record<string, Record<string, WriteCounts & { seconds: number }>> = {};
  try {
    for (const name of ['agent', 'node-problem-detector']) {
      contenders.push({ name, cluster: await BenchCluster.start(log), dns: await TestDnsServer.start({ records: { A: ['10.0.0.1'] } }) });
    }
    const [agent, npd] = contenders as [Contender, Contender];
    await agent.cluster.createNode('writes-agent');
    const agentPort = await freeLoopbackPort();
    agent.process = startAgent({
      name: 'agent',
      dir,
      nodeFlags: daemonSetNodeFlags(),
      config: agentConfig({ nodeName: 'writes-agent', kubeconfig: agent.cluster.agentKubeconfig, port: agentPort, dnsServer: agent.dns.address, kubeletUrl: kubelet.url }),
    });
    await npd.cluster.createNode('writes-npd');
    npd.process = startNodeProblemDetector({
      binary: npdBinary,
      dir,
      intervalSeconds: DNS_INTERVAL_SECONDS,
      dns: { host: '127.0.0.1', port: npd.dns.port, query: 'kubernetes.default.svc.cluster.local' },
      prometheusPort: await freeLoopbackPort(),
      kubernetes: { server: npd.cluster.plane.server, kubeconfig: npd.cluster.plane.kubeconfig, nodeName: 'writes-npd', port: await freeLoopbackPort() },
    }).process;
    await waitForOk(`http://127.0.0.1:${agentPort}/readyz`, 60_000, agent.process);
    await sleep(SETTLE_SECONDS * 1000);

    for (const phase of phases) {
      log(`${phase.name}: ${phase.seconds} s`);
      const before = await Promise.all(contenders.map((c) => writeCounts(c.cluster)));
      await phase.run(contenders, phase.seconds);
      const after = await Promise.all(contenders.map((c) => writeCounts(c.cluster)));
      for (const c of contenders) {
        if (!c.process?.running) throw new Error(`${c.name} exited during "${phase.name}":\n${c.process?.logTail()}`);
      }
      contenders.forEach((c, i) => {
        results[phase.name] ??= {};
        (results[phase.name] as Record<string, unknown>)[c.name] = { seconds: phase.seconds, ...writesBetween(before[i] as WriteCounts, after[i] as WriteCounts) };
      });
      // Let the last transitions of a phase settle before the next one counts.
      await sleep(SETTLE_SECONDS * 1000);
    }
  } finally {
    for (const c of contenders) {
      await c.process?.stop();
      await c.dns.stop();
      await c.cluster.stop();
    }
    await kubelet.stop();
  }

  const perHour = (n: number, seconds: number) => Number(((n * 3600) / seconds).toFixed(1));
  const rows: Array<Array<string | number>> = [];
  const summary: Record<string, unknown> = {};
  for (const [phase, byContender] of Object.entries(results)) {
    const figures = Object.fromEntries(
      Object.entries(byContender).map(([name, w]) => [
        name,
        {
          ...w,
          writesPerHour: perHour(w.nodeStatusWrites + w.eventWrites + w.otherWrites, w.seconds),
          statusWritesPerHour: perHour(w.nodeStatusWrites, w.seconds),
          eventWritesPerHour: perHour(w.eventWrites, w.seconds),
          kibPerHour: Number((perHour(w.nodeBytes + w.eventBytes, w.seconds) / 1024).toFixed(1)),
        },
      ]),
    );
    summary[phase] = figures;
    const ours = figures.agent;
    const theirs = figures['node-problem-detector'];
    for (const [name, f] of Object.entries(figures)) {
      rows.push([
        `${phase}: ${name}`,
        f.seconds,
        f.nodeStatusWrites,
        f.eventWrites,
        f.otherWrites,
        f.writesPerHour,
        f.kibPerHour,
        name === 'agent' && ours && theirs ? ratio(ours.writesPerHour, theirs.writesPerHour) : '',
      ]);
    }
  }
  process.stdout.write(
    `\nAPI writes per node, counted on each kube-apiserver's own metrics (agent and NPD ${nodeProblemDetectorVersion(npdBinary)} side by side, each on its own apiserver;\n` +
      `DNS checked every ${DNS_INTERVAL_SECONDS} s by both; heartbeats at their defaults: agent 300 s +-20% jitter, NPD 5 min)\n` +
      renderTable(['phase: process', 'seconds', 'status writes', 'event writes', 'other', 'writes/h', 'KiB/h', 'ours/NPD'], rows),
  );
  const path = writeResults('apiWriteCost', {
    benchmark: 'apiWriteCost',
    at: new Date().toISOString(),
    machine: machineFacts(),
    npd: nodeProblemDetectorVersion(npdBinary),
    dnsIntervalSeconds: DNS_INTERVAL_SECONDS,
    settleSeconds: SETTLE_SECONDS,
    phases: summary,
  });
  process.stdout.write(`results: ${path}\n`);
  rmSync(dir, { recursive: true, force: true });
}

if (isMainModule(import.meta.url)) runBenchMain('apiWriteCost', main);
