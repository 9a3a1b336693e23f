import { request } from 'node:http';
import type { CoreV1Event, V1Node, V1NodeCondition } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { components, keys, probeReasons } from '../../common/contract.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { FleetPage } from '../../controller/fleetPage.js';
import { columns, FleetRows } from '../../controller/fleetRows.js';
import { cellsOf, fleetSection, nextAction, type FleetSnapshot, type TimelineEntry } from '../../controller/fleetView.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { startMetricsServer } from '../../controller/metricsServer.js';
import { endStep, inconclusiveStep, serializeRemediationState, startStep } from '../../controller/remediationState.js';

/** The fleet page's rows, sections and stream, on a fake clock and a fake loop snapshot. */
const config = controllerConfigSchema.parse({});
const t0 = Date.parse('2026-12-01T12:00:00Z');
const minute = 60_000;

function node(name: string, conditions: Array<[string, string, string, string?]>, extra: { annotations?: Record<string, string>; labels?: Record<string, string>; heartbeat?: number } = {}): V1Node {
  const at = new Date(t0 - 10 * minute);
  const hb = new Date(extra.heartbeat ?? t0 - minute);
  return {
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}), ...(extra.labels ? { labels: extra.labels } : {}) },
    status: {
      conditions: conditions.map(([type, status, reason, message]): V1NodeCondition => ({ type, status, reason, message: message ?? `${reason} message`, lastTransitionTime: at, lastHeartbeatTime: hb })),
    },
  };
}

const healthyNode = (name: string, extra = {}) =>
  node(name, [
    ['Ready', 'True', 'KubeletReady'],
    ['DNSProblem', 'False', probeReasons.dns.healthy],
    ['DiskIOProblem', 'False', probeReasons.diskIO.normal],
  ], extra);

function snapshot(rows: FleetRows, more: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return { isCached: (name) => rows.get(name) !== undefined, leading: true, notCurrent: undefined, fleet: undefined, heldBack: new Map(), platformEvents: [], ...more };
}

describe('fleet page rows', () => {
  it('keeps a letter, a shared reason and times per column, and the message only of unhealthy cells', () => {
    const rows = new FleetRows();
    rows.observe(node('a', [['Ready', 'True', 'KubeletReady'], ['DNSProblem', 'True', 'ClusterDNSServfail', 'ClusterDNS (...): servfail'], ['DiskIOProblem', 'False', probeReasons.diskIO.normal]]));
    rows.observe(node('b', [['Ready', 'False', 'KubeletNotReady', 'container runtime is down'], ['DNSProblem', 'True', 'ClusterDNSServfail']]));
    const a = rows.get('a');
    expect(columns[0]).toBe('Ready');
    expect(a?.status.join('')).toBe(`T${'-'.repeat(columns.indexOf('DiskIOProblem') - 1)}F${'-'.repeat(columns.indexOf('DNSProblem') - columns.indexOf('DiskIOProblem') - 1)}T${'-'.repeat(columns.length - columns.indexOf('DNSProblem') - 1)}`);
    const dns = columns.indexOf('DNSProblem');
    expect(a?.messages[dns]).toBe('ClusterDNS (...): servfail');
    expect(a?.messages[columns.indexOf('DiskIOProblem')]).toBeUndefined();
    expect(a?.messages[0]).toBeUndefined();
    expect(rows.get('b')?.messages[0]).toBe('container runtime is down');
    // One string instance for a reason however many nodes carry it.
    expect(Object.is(a?.reasons[dns], rows.get('b')?.reasons[dns])).toBe(true);
  });

  it('an agent cell its agent stopped re-stating for two heartbeats reads stale', () => {
    const rows = new FleetRows();
    rows.observe(healthyNode('a', { heartbeat: t0 - 11 * minute }));
    const staleMs = 2 * config.detection.agentHeartbeatSeconds * 1000;
    const cells = cellsOf(rows.get('a')!, t0, staleMs);
    expect(cells[0]).toBe('T');
    expect(cells[columns.indexOf('DNSProblem')]).toBe('S');
    expect(cellsOf(rows.get('a')!, t0 - 2 * minute, staleMs)[columns.indexOf('DNSProblem')]).toBe('F');
  });

  it('drops the rows of nodes the cache no longer holds', () => {
    const rows = new FleetRows();
    rows.observe(healthyNode('a'));
    rows.observe(healthyNode('b'));
    expect(rows.retain((n) => n === 'a')).toEqual(['b']);
    expect([...rows.values()].map((r) => r.name)).toEqual(['a']);
  });
});

describe('fleet page sections', () => {
  it('the next action follows the ladder state and the ladder timings', () => {
    const started = startStep(undefined, 'reboot', 1, t0);
    expect(nextAction(started, config)).toEqual({ at: t0 + config.ladder.stepTimeoutSeconds * 1000, what: 'reboot running; its outcome is due by then' });
    expect(nextAction(endStep(started, t0 + minute), config)).toEqual({ at: t0 + minute + config.ladder.recoveryWaitSeconds.reboot * 1000, what: 'the next step, unless the node is healthy by then' });
    expect(nextAction(inconclusiveStep(started, t0 + minute, 'OperationNotAllowed'), config).at).toBe(t0 + minute + config.ladder.retryDelaySeconds * 1000);
    expect(nextAction({ phase: 'unreadable', error: 'not JSON' }, config).what).toMatch(/left alone/);
  });

  it('shows the breaker and why, nodes on the ladder or held back, and the latest events of both remediators first', () => {
    const rows = new FleetRows();
    rows.observe(healthyNode('a', { annotations: { [keys.remediationState]: serializeRemediationState(startStep(undefined, 'reimage', 2, t0 - minute)) } }));
    rows.observe(healthyNode('b'));
    rows.observe(healthyNode('c'));
    const own: TimelineEntry[] = [{ at: t0 - 2 * minute, node: 'a', source: components.controller, type: 'Normal', reason: 'NodeReimageStart', message: 'reimage started' }];
    const aks: CoreV1Event = { metadata: {}, involvedObject: { kind: 'Node', name: 'c' }, reason: 'NodeRebootStart', source: { component: components.aksAutoRepair }, lastTimestamp: new Date(t0 - minute), type: 'Normal', message: 'rebooting' };
    const section = fleetSection(rows, snapshot(rows, { fleet: { nodes: 3, unhealthy: 2, quarantineWanted: 0, inFlight: 1, breakerOpen: true, paused: false }, heldBack: new Map([['b', 'circuit-breaker']]), platformEvents: [aks] }), config, own);
    expect(section.breaker).toMatchObject({ open: true, unhealthy: 2, counted: 3, inFlight: 1, maxInFlight: 1, paused: false });
    expect(section.breaker?.why).toBe('2 of 3 nodes are unhealthy, more than the 1 allowed (20% of 3, at least 1)');
    expect(section.ladder).toEqual([
      { node: 'a', step: 'reimage', phase: 'started', attempt: 2, stepStartedAt: t0 - minute, next: { at: t0 - minute + config.ladder.stepTimeoutSeconds * 1000, what: 'reimage running; its outcome is due by then' } },
      { node: 'b', phase: 'held back', heldBack: 'circuit-breaker', next: { what: 'a first step once the rule lets go' } },
    ]);
    expect(section.timeline.map((t) => [t.node, t.source, t.reason])).toEqual([
      ['c', components.aksAutoRepair, 'NodeRebootStart'],
      ['a', components.controller, 'NodeReimageStart'],
    ]);
  });

  it('a follower says so and shows no breaker', () => {
    const rows = new FleetRows();
    const section = fleetSection(rows, snapshot(rows, { leading: false, notCurrent: 'nodes watch down for 42s' }), config, []);
    expect(section).toEqual({ replica: { leading: false, notCurrent: 'nodes watch down for 42s' }, ladder: [], timeline: [] });
  });
});

describe('fleet page over HTTP', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function serve(rows: FleetRows, now: () => number, maxBufferedBytes?: number) {
    const page = new FleetPage({ config, rows, snapshot: () => snapshot(rows), ownEvents: () => [], now, tickMs: 20, ...(maxBufferedBytes ? { maxBufferedBytes } : {}) });
    const server = await startMetricsServer(new ControllerMetrics(), { address: '127.0.0.1', port: 0, notReady: () => undefined, pages: (path, req, res) => page.handle(path, req, res) });
    close = async () => {
      page.close();
      await server.close();
    };
    return { page, url: `http://127.0.0.1:${server.port}` };
  }

  /** Reads server-sent events from the stream until `until` says stop. */
  function readEvents(url: string, until: (events: Array<{ event: string; data: any }>) => boolean): Promise<Array<{ event: string; data: any }>> {
    return new Promise((resolve, reject) => {
      const events: Array<{ event: string; data: any }> = [];
      const req = request(`${url}/fleet/stream`, (res) => {
        let buffer = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          buffer += chunk;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data: JSON.parse(data) });
            if (until(events)) {
              req.destroy();
              resolve(events);
            }
          }
        });
      });
      req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
      req.end();
    });
  }

  it('serves the page, then every row once and afterwards only the rows that moved', async () => {
    const rows = new FleetRows();
    for (const n of ['a', 'b', 'c']) rows.observe(healthyNode(n));
    let now = t0;
    const { url } = await serve(rows, () => now);
    const html = await fetch(`${url}/fleet`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await html.text()).toContain('new EventSource("fleet/stream")');
    const events = await readEvents(url, (got) => {
      if (got.length === 1) {
        now += 1000;
        rows.observe(node('b', [['Ready', 'False', 'KubeletNotReady', 'container runtime is down']]));
      }
      return got.some((e) => e.event === 'patch' && e.data.rows.length > 0);
    });
    expect(events[0]?.event).toBe('snapshot');
    expect(events[0]?.data.rows.map((r: unknown[]) => r[0])).toEqual(['a', 'b', 'c']);
    expect(events[0]?.data.columns).toEqual(columns);
    const patch = events.find((e) => e.event === 'patch' && e.data.rows.length > 0)?.data;
    expect(patch.rows.map((r: unknown[]) => [r[0], r[1]])).toEqual([['b', `F${'-'.repeat(columns.length - 1)}`]]);
    expect(patch.reasons).toContain('KubeletNotReady');
  });

  it('answers one node in full with the doctor command, 404 for a node it does not hold, and no writes', async () => {
    const rows = new FleetRows();
    rows.observe(node('a', [['Ready', 'True', 'KubeletReady'], ['DiskIOProblem', 'True', probeReasons.diskIO.throttled, 'sda at its IOPS cap']]));
    const { url } = await serve(rows, () => t0);
    const detail = (await (await fetch(`${url}/fleet/node?name=a`)).json()) as { doctor: string; conditions: Array<{ type: string }> };
    expect(detail.doctor).toBe('kubectl nodepulse doctor --node a');
    expect(detail.conditions.find((c: { type: string }) => c.type === 'DiskIOProblem')).toMatchObject({ status: 'T', reason: 'IOThrottled', message: 'sda at its IOPS cap', healthy: false });
    expect((await fetch(`${url}/fleet/node?name=zz`)).status).toBe(404);
    expect((await fetch(`${url}/fleet/stream`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a viewer beyond the cap instead of holding a stream for it', async () => {
    const rows = new FleetRows();
    rows.observe(healthyNode('a'));
    const { url, page } = await serve(rows, () => t0);
    const open = await Promise.all(Array.from({ length: 16 }, () => readEvents(url, () => true).then(() => undefined)));
    expect(open).toHaveLength(16);
    // Each of those was closed after its snapshot; hold 16 at once now.
    const held: Array<() => void> = [];
    await Promise.all(
      Array.from({ length: 16 }, () => new Promise<void>((resolve) => {
        const req = request(`${url}/fleet/stream`, (res) => res.once('data', () => resolve()));
        req.on('error', () => undefined);
        req.end();
        held.push(() => req.destroy());
      })),
    );
    expect(page.viewerCount).toBe(16);
    const refused = await fetch(`${url}/fleet/stream`);
    expect(refused.status).toBe(503);
    for (const release of held) release();
  });

  it('drops a viewer that stops reading instead of buffering for it without end', async () => {
    const rows = new FleetRows();
    const fleet = Array.from({ length: 2000 }, (_, i) => `node-${String(i).padStart(4, '0')}-${'x'.repeat(40)}`);
    for (const n of fleet) rows.observe(healthyNode(n));
    let now = t0;
    const { url, page } = await serve(rows, () => now, 256 * 1024);
    // Every row moves on every tick, so every patch carries the whole fleet.
    const churn = setInterval(() => {
      now += 1000;
      for (const n of fleet) rows.observe(healthyNode(n, { heartbeat: now }));
    }, 20);
    try {
      // The client reads the first bytes, then nothing more: it cannot see the server let go, the server can.
      const req = request(`${url}/fleet/stream`, (res) => res.once('data', () => res.pause()));
      req.on('error', () => undefined);
      req.end();
      const deadline = Date.now() + 15_000;
      let seen = false;
      while (Date.now() < deadline && !(seen && page.viewerCount === 0)) {
        seen ||= page.viewerCount === 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      req.destroy();
      expect(seen).toBe(true);
      expect(page.viewerCount).toBe(0);
    } finally {
      clearInterval(churn);
    }
  });
});
