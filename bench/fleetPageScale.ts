import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { launchBrowser } from '../test/support/browser.js';
import { BenchCluster } from './support/benchCluster.js';
import { isMainModule, runBenchMain } from './support/benchMain.js';
import { freeLoopbackPort } from './support/loopbackPort.js';
import type { BenchOptions } from './support/benchOptions.js';
import { renderTable, repoRoot, writeResults } from './support/benchOutput.js';
import { machineFacts } from './support/machine.js';
import { agentFleetNode, createNodes, fleetNodeName } from './support/nodeFleet.js';
import { readMemory } from './support/processTree.js';
import { median } from './support/stats.js';

/**
 * The controller's fleet page at fleet scale: Nodes as agents leave them (eight conditions
 * each, 1% throttled, 0.4% NotReady) on the test control plane, the built controller (dry-run,
 * admin kubeconfig) serving the page, and Debian's Chromium loading it fresh each trial. Page
 * weight is the bytes on the wire (Chromium's own count, compressed) until the grid is first
 * drawn; time to first render is from navigation start to the grid drawn from the first
 * snapshot; also the rows in the DOM (the grid draws only those in view), the page's JS
 * heap, and the time a scroll to the middle of the fleet takes to draw.
 */
const controllerCli = join(repoRoot(), 'dist/controller/cli.js');

/** A TCP relay in front of the page that counts the bytes it sends the browser: the page's weight on the wire, headers and compression included. */
async function countingRelay(upstreamPort: number): Promise<{ port: number; bytes: () => number; reset: () => void; close: () => void }> {
  let sent = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk: Buffer) => (sent += chunk.length));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    bytes: () => sent,
    reset: () => (sent = 0),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function measure(nodeCount: number, trials: number, log: (line: string) => void) {
  const cluster = await BenchCluster.start(log);
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-fleet-page-'));
  let controller: ReturnType<typeof spawn> | undefined;
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  let relay: Awaited<ReturnType<typeof countingRelay>> | undefined;
  try {
    const now = Date.now();
    const createMs = await createNodes(cluster.core, Array.from({ length: nodeCount }, (_, i) => agentFleetNode(i, now)));
    log(`${nodeCount} nodes created in ${(createMs / 1000).toFixed(1)} s`);
    const port = await freeLoopbackPort();
    const configFile = join(dir, 'controller.yaml');
    writeFileSync(configFile, stringify({ kubeconfig: cluster.plane.kubeconfig, metrics: { address: '127.0.0.1', port } }));
    controller = spawn(process.execPath, [controllerCli, '--config', configFile], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
    const base = `http://127.0.0.1:${port}`;
    await until('the controller to be ready', async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined), 120_000);
    const controllerRssMiB = (readMemory(controller.pid as number)?.rssKiB ?? 0) / 1024;
    browser = await launchBrowser();
    relay = await countingRelay(port);
    const runs = [];
    for (let t = 0; t < trials; t++) {
      const page = await browser.context.newPage();
      const cdp = await browser.context.newCDPSession(page);
      relay.reset();
      await page.goto(`http://127.0.0.1:${relay.port}/fleet`);
      await page.waitForFunction('window.fleetPage.firstRenderMs !== null', undefined, { timeout: 60_000 });
      const firstRenderMs = (await page.evaluate('window.fleetPage.firstRenderMs')) as number;
      const snapshotChars = (await page.evaluate('window.fleetPage.bytes')) as number;
      const rowsInDom = (await page.evaluate("document.querySelectorAll('#spacer .row').length")) as number;
      const shown = (await page.evaluate("document.querySelector('#counts').textContent")) as string;
      const bytesAtRender = relay.bytes();
      const heap = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
      const scrollMs = (await page.evaluate(`new Promise((resolve) => {
        const vp = document.getElementById('viewport');
        const started = performance.now();
        vp.scrollTop = vp.scrollHeight / 2;
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
      })`)) as number;
      runs.push({ firstRenderMs, wireKiB: bytesAtRender / 1024, snapshotKiB: snapshotChars / 1024, rowsInDom, heapMiB: heap.usedSize / 2 ** 20, scrollMs, shown });
      log(`trial ${t + 1}: ${JSON.stringify(runs.at(-1))}`);
      await page.close();
    }
    return {
      nodes: nodeCount,
      firstRenderMsMedian: Math.round(median(runs.map((r) => r.firstRenderMs))),
      firstRenderMsMax: Math.round(Math.max(...runs.map((r) => r.firstRenderMs))),
      wireKiB: Math.round(median(runs.map((r) => r.wireKiB))),
      snapshotKiB: Math.round(median(runs.map((r) => r.snapshotKiB))),
      rowsInDom: runs[0]?.rowsInDom,
      pageHeapMiB: Number(median(runs.map((r) => r.heapMiB)).toFixed(1)),
      scrollToMiddleMs: Math.round(median(runs.map((r) => r.scrollMs))),
      controllerRssMiB: Math.round(controllerRssMiB),
      counts: runs[0]?.shown,
      firstNode: fleetNodeName(0),
    };
  } finally {
    relay?.close();
    await browser?.close();
    controller?.kill('SIGTERM');
    await cluster.plane.stop();
  }
}

export async function main(options: BenchOptions): Promise<void> {
  const counts = options.nodes ?? (options.quick ? [500] : [5000]);
  const trials = options.trials ?? (options.quick ? 1 : 5);
  const log = (line: string) => process.stderr.write(`[fleetPageScale] ${line}\n`);
  const rows = [];
  for (const n of counts) rows.push(await measure(n, trials, log));
  process.stdout.write(
    renderTable(
      ['nodes', 'first render ms (median)', 'max', 'on the wire KiB', 'snapshot KiB (decoded)', 'rows in DOM', 'page JS heap MiB', 'scroll to middle ms', 'controller RSS MiB'],
      rows.map((r) => [r.nodes, r.firstRenderMsMedian, r.firstRenderMsMax, r.wireKiB, r.snapshotKiB, r.rowsInDom ?? 0, r.pageHeapMiB, r.scrollToMiddleMs, r.controllerRssMiB]),
    ),
  );
  const path = writeResults('fleetPageScale', { at: new Date().toISOString(), machine: machineFacts(), trials, rows });
  process.stdout.write(`results in ${path}\n`);
}

if (isMainModule(import.meta.url)) runBenchMain('fleetPageScale', main);
