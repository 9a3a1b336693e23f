import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions, type V1NodeCondition } from '@kubernetes/client-node';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeReasons } from '../../common/contract.js';
import { testCluster } from '../cluster/testCluster.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import type { CliProcess } from '../support/cliProcess.js';
import { RemediationHarness } from '../support/remediationHarness.js';

/**
 * The fleet page in a real browser (Debian's Chromium, headless, driven by playwright-core)
 * against the controller running as its ServiceAccount on the test control plane: the grid
 * shows the pool's nodes and their conditions, a node going NotReady reaches the ladder
 * section and the timeline without a reload, and a screenshot is written for the README
 * (FLEET_SCREENSHOT=docs/fleet-page.png to replace the committed one).
 */
let h: RemediationHarness;
let browser: Browser;
let page: Page;
let replica: CliProcess;
let names: string[];
let url: string;
const screenshot = process.env.FLEET_SCREENSHOT ?? join(tmpdir(), 'nodepulse-fleet-page.png');

async function publish(node: string, conditions: Array<[string, string, string, string]>): Promise<void> {
  const now = new Date();
  const since = new Date(Date.now() - 14 * 60_000);
  const body = conditions.map(([type, status, reason, message]): V1NodeCondition => ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: since }));
  await h.admin.patchNodeStatus({ name: node, body: { status: { conditions: body } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
}

/** What an agent with every probe on publishes on a healthy node. */
const healthy: Array<[string, string, string, string]> = [
  ['CPUPressureProblem', 'False', probeReasons.cpu.normal, 'cpu some avg10=2.00% (threshold 75%)'],
  ['MemoryPressureProblem', 'False', probeReasons.memory.normal, 'MemAvailable 9000 MiB'],
  ['PIDPressureProblem', 'False', probeReasons.pid.normal, '300 tasks'],
  ['DiskIOProblem', 'False', probeReasons.diskIO.normal, 'io some avg10=0.10%'],
  ['DiskSpaceProblem', 'False', probeReasons.diskSpace.normal, '/ 40% used'],
  ['DNSProblem', 'False', probeReasons.dns.healthy, '3 DNS check(s) answered'],
  ['KubeletProblem', 'False', probeReasons.kubelet.healthy, 'healthz ok'],
  ['KonnectivityProblem', 'False', probeReasons.konnectivity.healthy, 'answered in 12ms'],
];

/** Page-side conditions as expressions (the tests compile without the DOM's types). */
const rowCount = (n: number) => `document.querySelectorAll('#spacer .row').length === ${n}`;
const detailOf = (node: string) => `document.querySelector('#detail .name')?.textContent === ${JSON.stringify(node)}`;
const cellClass = (node: string, column: string) => page.locator(`#spacer .row[data-node="${node}"] .cell[data-col="${column}"]`).getAttribute('class');

beforeAll(async () => {
  h = await RemediationHarness.start(testCluster());
  const created = await h.createPool(8);
  names = created.names;
  for (const name of names) await publish(name, healthy);
  await publish(names[1] as string, [['DNSProblem', 'True', 'ClusterDNSServfail', 'ClusterDNS (kubernetes.default.svc.cluster.local A via 10.0.0.10:53): servfail after 3 ms: SERVFAIL']]);
  await publish(names[2] as string, [['DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'io some avg10=62.40% on sda 499 IOPS (cap 500, P10)']]);
  await publish(names[3] as string, [['KubeletProblem', 'Unknown', 'ProbeError', 'the kubelet probe crashed']]);
  replica = h.startReplica('fleet-page', h.controllerConfig(created.pool, { provider: { type: 'dry-run' } }));
  await h.leading('fleet-page');
  url = `http://127.0.0.1:${await h.metricsPort(replica)}/fleet`;
  browser = await launchBrowser();
  page = await browser.context.newPage();
  await page.goto(url);
  await page.waitForFunction('window.fleetPage.snapshots > 0', undefined, { timeout: 20_000 });
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('the fleet page in a real browser', () => {
  it('draws every node of the pool with the colour of each condition, the reason on hover', async () => {
    await page.waitForFunction(rowCount(names.length), undefined, { timeout: 10_000 });
    const shown = await page.locator('#spacer .row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-node')));
    expect(new Set(shown)).toEqual(new Set(names));
    // Problems sort first.
    expect(shown.slice(0, 2).sort()).toEqual([names[1], names[2]].sort());
    expect(await cellClass(names[0] as string, 'Ready')).toBe('cell c-ok');
    expect(await cellClass(names[1] as string, 'DNSProblem')).toBe('cell c-problem');
    expect(await cellClass(names[2] as string, 'DiskIOProblem')).toBe('cell c-problem');
    expect(await cellClass(names[3] as string, 'KubeletProblem')).toBe('cell c-unknown');
    expect(await cellClass(names[0] as string, 'DNSProblem')).toBe('cell c-ok');
    const title = await page.locator(`#spacer .row[data-node="${names[1]}"] .cell[data-col="DNSProblem"]`).getAttribute('title');
    expect(title).toMatch(/^DNSProblem=True ClusterDNSServfail, since \S+ \(1[45]m\d*s?\)/);
    expect(await page.locator('#counts').textContent()).toBe(`${names.length} nodes, 2 with a problem`);
    expect(await page.locator('#breaker').textContent()).toMatch(/^closed/);
  });

  it('the filter box narrows the grid by node name or reason', async () => {
    await page.fill('#filter', 'IOThrottled');
    await page.waitForFunction(rowCount(1));
    expect(await page.locator('#spacer .row').getAttribute('data-node')).toBe(names[2]);
    await page.fill('#filter', '');
    await page.waitForFunction(rowCount(names.length));
  });

  it('a click shows the node with its messages and the doctor command line', async () => {
    await page.click(`#spacer .row[data-node="${names[2]}"] .name`);
    await page.waitForFunction(detailOf(names[2] as string));
    const detail = await page.locator('#detail').textContent();
    expect(detail).toContain(`kubectl nodepulse doctor --node ${names[2]}`);
    expect(detail).toContain('io some avg10=62.40% on sda 499 IOPS (cap 500, P10)');
    expect(await page.locator(`#spacer .row[data-node="${names[2]}"] a.doc`).getAttribute('title')).toBe(`kubectl nodepulse doctor --node ${names[2]}`);
  });

  it('a node going NotReady turns red and appears in the ladder section and the timeline without a reload', async () => {
    const sick = names[5] as string;
    await h.setReady(sick, 'False');
    await page.waitForFunction(`document.querySelector('#spacer .row[data-node="${sick}"] .cell[data-col="Ready"]')?.className === 'cell c-problem'`, undefined, { timeout: 15_000 });
    await page.waitForFunction(`document.querySelector('#ladder tr[data-node="${sick}"]') !== null`, undefined, { timeout: 30_000 });
    const ladder = await page.locator(`#ladder tr[data-node="${sick}"]`).textContent();
    expect(ladder).toMatch(/^\S+reboot (started|ended)1/);
    await page.waitForFunction(`[...document.querySelectorAll('#timeline li')].some((li) => li.textContent.includes(${JSON.stringify(sick)}) && li.textContent.includes('NodeRebootStart'))`, undefined, { timeout: 15_000 });
    const state = (await page.evaluate('window.fleetPage')) as { snapshots: number; patches: number };
    // One snapshot: the page was never reloaded (nor its stream reconnected); the rest came as patches.
    expect(state.snapshots).toBe(1);
    expect(state.patches).toBeGreaterThan(0);
    await page.click(`#spacer .row[data-node="${sick}"] .name`);
    await page.waitForFunction(detailOf(sick));
    await page.screenshot({ path: screenshot });
  });
});
