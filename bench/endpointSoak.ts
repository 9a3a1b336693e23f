import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDnsServer } from '../test/support/dnsServer.js';
import { nodeVersion, projectNode, startAgent, waitForOk } from './support/agentProcess.js';
import { standaloneAgentConfig } from './support/benchAgentConfig.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import type { BenchOptions } from './support/benchOptions.js';
import { renderTable, writeResults } from './support/benchOutput.js';
import { daemonSetNodeFlags } from './support/daemonSetFlags.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import { machineFacts } from './support/machine.js';
import { readMemory } from './support/processTree.js';

/**
 * The node-local endpoint under the abuse of issue 15, against the agent as the DaemonSet runs
 * it (standalone, its V8 flags): thousands of silent sockets, slowloris clients that trickle
 * headers and never read, a burst of concurrent keep-alive GETs, and pipelining clients that
 * never read their answers. For each phase: the agent's RSS and open descriptors, and whether
 * /healthz (a fresh connection every 250 ms, as the kubelet's probe makes) kept answering.
 * Loopback only; abusers come from 127.0.0.10-17 so both the per-source and the listener
 * cap are exercised, /healthz from 127.0.0.1.
 */

const MiB = 1024;
const ABUSE_SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${10 + i}`);
const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface PhaseFigures {
  phase: string;
  /** VmRSS at the end of the phase, MiB. */
  rssMiB: number;
  /** Highest VmRSS sampled during the phase, MiB. */
  peakRssMiB: number;
  anonMiB: number;
  /** Most descriptors the agent held at once during the phase. */
  peakFds: number;
  /** Descriptors at the end of the phase (after its clients stopped, for the idle phases). */
  fds: number;
  healthzOk: number;
  healthzTotal: number;
  healthzMaxMs: number;
  /** What the abuse itself got, when it asks for answers. */
  note: string;
}

interface Abuse {
  name: string;
  /** Starts the abuse; returns what to say about it at the end and how to stop it. */
  start: (port: number) => Promise<{ note: () => string; stop: () => void }>;
}

/** Opens `count` sockets spread over the abuse sources, `batch` connects at a time; failures are counted, not thrown. */
async function openSockets(port: number, count: number, onConnect: (socket: Socket) => void): Promise<{ sockets: Socket[]; failed: number }> {
  const sockets: Socket[] = [];
  let failed = 0;
  const batch = 200;
  for (let start = 0; start < count; start += batch) {
    const wave = Array.from({ length: Math.min(batch, count - start) }, (_, i) => {
      const localAddress = ABUSE_SOURCES[(start + i) % ABUSE_SOURCES.length] as string;
      return new Promise<void>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port, localAddress }, () => {
          socket.pause();
          onConnect(socket);
          resolve();
        });
        socket.on('error', () => {
          failed += 1;
          resolve();
        });
        sockets.push(socket);
      });
    });
    await Promise.all(wave);
  }
  return { sockets, failed };
}

const abuses = (quick: boolean): Abuse[] => [
  {
    name: `${quick ? 1000 : 3000} silent sockets`,
    start: async (port) => {
      const { sockets, failed } = await openSockets(port, quick ? 1000 : 3000, () => undefined);
      return { note: () => `${failed} connects failed`, stop: () => sockets.forEach((s) => s.destroy()) };
    },
  },
  {
    name: '300 slowloris, never reading',
    start: async (port) => {
      const { sockets } = await openSockets(port, 300, (socket) => socket.write('GET /conditions HTTP/1.1\r\nHost: soak\r\n'));
      // A header line a second keeps each request "in progress" for as long as the server lets it.
      const drip = setInterval(() => {
        for (const socket of sockets) if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
      }, 1000);
      const stop = () => {
        clearInterval(drip);
        for (const socket of sockets) socket.destroy();
      };
      return { note: () => '', stop };
    },
  },
  {
    name: '1000 concurrent keep-alive GETs',
    start: async (port) => {
      const answered = { ok: 0, failed: 0 };
      // One keep-alive pool, as a client library would keep: answered connections stay open, idle.
      const pool = new Agent({ keepAlive: true, maxSockets: Infinity });
      await Promise.all(
        Array.from(
          { length: 1000 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const req = request(
                { host: '127.0.0.1', port, path: '/conditions', localAddress: ABUSE_SOURCES[i % ABUSE_SOURCES.length], agent: pool },
                (res) => {
                  res.resume();
                  res.on('end', () => {
                    answered.ok += 1;
                    resolve();
                  });
                },
              );
              req.on('error', () => {
                answered.failed += 1;
                resolve();
              });
              req.end();
            }),
        ),
      );
      return { note: () => `${answered.ok} answered, ${answered.failed} refused or reset`, stop: () => pool.destroy() };
    },
  },
  {
    name: '64 pipelining 200 /metrics each, never reading',
    start: async (port) => {
      const { sockets } = await openSockets(port, 64, (socket) => socket.write('GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n'.repeat(200)));
      return { note: () => '', stop: () => sockets.forEach((s) => s.destroy()) };
    },
  },
];

/** Polls /healthz on a fresh connection from 127.0.0.1 every 250 ms until stopped. */
function pollHealthz(port: number): { stop: () => Promise<{ ok: number; total: number; maxMs: number }> } {
  let running = true;
  const figures = { ok: 0, total: 0, maxMs: 0 };
  const once = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) figures.ok += 1;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve());
      req.on('close', () => {
        figures.maxMs = Math.max(figures.maxMs, performance.now() - started);
      });
      req.end();
    }).then(() => {
      figures.total += 1;
    });
  const loop = (async () => {
    while (running) {
      await once();
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ...figures, maxMs: round(figures.maxMs) };
    },
  };
}

function descriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Samples the agent every second while `seconds` pass; returns the peaks and the last sample. */
async function watch(pid: number, seconds: number) {
  let peakRssKiB = 0;
  let peakFds = 0;
  let last = readMemory(pid);
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    last = readMemory(pid);
    if (!last) throw new Error('the agent exited during the soak');
    peakRssKiB = Math.max(peakRssKiB, last.rssKiB);
    peakFds = Math.max(peakFds, descriptors(pid));
  }
  return { peakRssKiB, peakFds, last };
}

export async function main(options: BenchOptions): Promise<void> {
  const holdSeconds = options.quick ? 6 : 20;
  const settleSeconds = options.quick ? 5 : 15;
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-soak-'));
  const dns = await TestDnsServer.start({ records: { A: ['10.96.0.1'] } });
  const port = await freeLoopbackPort();
  const flags = daemonSetNodeFlags();
  const agent = startAgent({ name: 'agent', dir, config: standaloneAgentConfig({ port, dnsServer: dns.address, query: 'soak.bench.test' }), nodeFlags: flags });
  const figures: PhaseFigures[] = [];
  try {
    await waitForOk(`http://127.0.0.1:${port}/readyz`, 30_000, agent);
    const measure = async (phase: string, seconds: number, note: () => string = () => '') => {
      const poll = pollHealthz(port);
      const seen = await watch(agent.pid, seconds);
      const healthz = await poll.stop();
      figures.push({
        phase,
        rssMiB: round((seen.last?.rssKiB ?? 0) / MiB),
        peakRssMiB: round(seen.peakRssKiB / MiB),
        anonMiB: round((seen.last?.anonKiB ?? 0) / MiB),
        peakFds: seen.peakFds,
        fds: descriptors(agent.pid),
        healthzOk: healthz.ok,
        healthzTotal: healthz.total,
        healthzMaxMs: healthz.maxMs,
        note: note(),
      });
      process.stderr.write(`endpointSoak: ${phase} done\n`);
    };
    await measure('before (idle)', settleSeconds);
    for (const abuse of abuses(options.quick)) {
      const running = await abuse.start(port);
      await measure(`during: ${abuse.name}`, holdSeconds, running.note);
      running.stop();
      await sleep(2000);
    }
    await measure('after (clients gone)', settleSeconds);
  } finally {
    await agent.stop();
    await dns.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  process.stdout.write(
    `endpoint soak: the agent as the DaemonSet runs it (${flags.join(' ')}), standalone, ${nodeVersion(projectNode())}; ` +
      `each abuse held ${holdSeconds} s; /healthz polled on a fresh connection every 250 ms\n`,
  );
  process.stdout.write(
    renderTable(
      ['phase', 'RSS MiB', 'peak RSS', 'anon', 'peak fds', 'fds', '/healthz ok', 'max ms', 'abuse got'],
      figures.map((f) => [f.phase, f.rssMiB, f.peakRssMiB, f.anonMiB, f.peakFds, f.fds, `${f.healthzOk}/${f.healthzTotal}`, f.healthzMaxMs, f.note]),
    ),
  );
  const path = writeResults('endpointSoak', {
    benchmark: 'endpointSoak',
    at: new Date().toISOString(),
    machine: machineFacts(),
    node: nodeVersion(projectNode()),
    nodeFlags: flags,
    holdSeconds,
    phases: figures,
  });
  process.stdout.write(`results: ${path}\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('endpointSoak', main);
