import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../../common/contract.js';
import { nodeEvent } from '../../common/kube/nodeEvent.js';
import { type ControlPlane, startControlPlane } from '../cluster/controlPlane.js';
import type { CliProcess } from '../support/cliProcess.js';
import { RemediationHarness, sleep } from '../support/remediationHarness.js';

/**
 * The controller through the API server's own faults, on a control plane of its own (these
 * tests stop the API server, which the shared one must never see): a restart under two
 * replicas, a two-minute outage, and a watch that fails while the Lease can still be renewed.
 * What an operator needs: repairs go on afterwards, nothing is decided on a stale cache, and
 * /readyz and the leader metric say so while it lasts.
 */
let plane: ControlPlane;
let h: RemediationHarness;
const stopHeartbeats: Array<() => Promise<void>> = [];

beforeAll(async () => {
  plane = await startControlPlane({ profile: 'apiserver' });
  h = await RemediationHarness.start(plane);
}, 120_000);

afterEach(async () => {
  await Promise.all(stopHeartbeats.splice(0).map((stop) => stop()));
  await h.reset();
});

afterAll(async () => {
  await h?.close();
  await plane?.stop();
});

async function readyz(replica: CliProcess): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${await h.metricsPort(replica)}/readyz`);
  return { status: response.status, body: await response.text() };
}

async function leaderGauge(replica: CliProcess): Promise<number> {
  const line = (await h.metricsOf(replica)).split('\n').find((l) => l.startsWith('nodepulse_controller_leader '));
  return Number(line?.split(' ')[1]);
}

/** Kubelets' status reports: every node's Ready heartbeat renewed every second while the API server answers. */
function heartbeats(names: string[]): void {
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(names.map((name) => h.setReady(name, 'True').catch(() => undefined)));
      await sleep(1000);
    }
  })();
  stopHeartbeats.push(async () => {
    running = false;
    await loop;
  });
}

describe('the controller through API server faults', () => {
  it('after an API server restart under two replicas, the leader still repairs the next NotReady node and still defers to the platform', async () => {
    const { pool, names } = await h.createPool(5);
    const config = h.controllerConfig(pool, { cache: { maxStaleSeconds: 3 } });
    const a = h.startReplica('replica-a', config);
    await h.leading('replica-a');
    const b = h.startReplica('replica-b', config);
    await h.eventually('both replicas ready', async () => ((await readyz(a)).status === 200 && (await readyz(b)).status === 200 ? true : undefined), 10_000);

    await plane.restartApiserver(1000);

    // A node going NotReady after the restart is seen and repaired (a frozen cache never saw it).
    const sick = names[0] ?? '';
    await h.setReady(sick, 'False');
    await h.eventually('NodeRebootEnd after the restart', async () => ((await h.reasonsOf(sick)).includes('NodeRebootEnd') ? true : undefined), 30_000);
    expect(h.arm.posts('0', 'restart')).toBe(1);

    // The platform-event watch came back too: an aks-auto-repair event now defers the next node.
    const deferred = names[1] ?? '';
    const uid = (await h.admin.readNode({ name: deferred })).metadata?.uid ?? '';
    await h.admin.createNamespacedEvent({
      namespace: 'default',
      body: nodeEvent({
        node: { name: deferred, uid },
        type: 'Normal',
        reason: 'NodeRebootStart',
        message: 'Node auto-repair is initiating a reboot action due to NotReady status persisting for more than 5 minutes.',
        component: components.aksAutoRepair,
        host: 'aks-remediator',
        now: new Date(),
      }),
    });
    await sleep(1000);
    await h.setReady(deferred, 'False');
    await h.eventually('NodeRemediationDeferred after the restart', async () => ((await h.reasonsOf(deferred)).includes('NodeRemediationDeferred') ? true : undefined), 20_000);
    expect(h.arm.posts('1', 'restart')).toBe(0);
  }, 120_000);

  it('through a two-minute outage nothing is decided, /readyz says why, and afterwards no node is taken for silent because it could not report', async () => {
    const { pool, names } = await h.createPool(5);
    heartbeats(names);
    // Heartbeat detection on: a node silent for 20 s is unhealthy. The outage lasts six times that.
    const config = h.controllerConfig(pool, { cache: { maxStaleSeconds: 3 }, detection: { noStatusSeconds: 20 } });
    const a = h.startReplica('replica-a', config);
    await h.leading('replica-a');
    const b = h.startReplica('replica-b', config);
    await sleep(3000);
    const armCallsBefore = h.arm.calls.length;

    const outage = plane.restartApiserver(120_000);
    const notReady = await h.eventually('replica-a /readyz to fail', async () => {
      const r = await readyz(a);
      return r.status === 503 ? r : undefined;
    }, 15_000);
    expect(notReady.body).toMatch(/^nodes watch down for \d+s \(more than cache\.maxStaleSeconds=3\)/);
    expect((await readyz(b)).status).toBe(503);
    await h.eventually('replica-a to stop leading', async () => ((await leaderGauge(a)) === 0 ? true : undefined), 10_000);
    expect(await leaderGauge(b)).toBe(0);
    await outage;

    await h.eventually('both replicas ready again', async () => ((await readyz(a)).status === 200 && (await readyz(b)).status === 200 ? true : undefined), 40_000);
    await h.eventually('a leader again', async () => ((await leaderGauge(a)) + (await leaderGauge(b)) === 1 ? true : undefined), 20_000);
    // Past a full noStatusSeconds after the cache came back: every heartbeat was 2 minutes old
    // when it did, yet nothing was skipped, deferred or repaired.
    await sleep(25_000);
    for (const name of names) expect(await h.reasonsOf(name)).toEqual([]);
    expect(h.arm.calls.length).toBe(armCallsBefore);
    for (const replica of [a, b]) {
      expect(replica.logged('circuit breaker open')).toEqual([]);
      expect(replica.logged('cache is not current: nothing is decided until it is').length).toBeGreaterThanOrEqual(1);
    }
  }, 300_000);

  it('a Node watch that keeps failing while the Lease can still be renewed makes the leader step down and decide nothing until it recovers', async () => {
    const { pool, names } = await h.createPool(5);
    const config = h.controllerConfig(pool, { cache: { maxStaleSeconds: 3 } });
    const a = h.startReplica('replica-a', config);
    await h.leading('replica-a');
    // Take away the controller's right to watch Nodes (list, get and the Lease still work),
    // then drop the open watch with a short restart.
    const role = fileURLToPath(new URL('../../manifests/base/controller-rbac.yaml', import.meta.url));
    await plane.kubectl(['patch', 'clusterrole', 'nodepulse-controller', '--type=json', '-p', JSON.stringify([watchlessNodesPatch])]);
    await plane.restartApiserver(500);
    const r = await h.eventually('/readyz to fail', async () => {
      const x = await readyz(a);
      return x.status === 503 ? x : undefined;
    }, 30_000);
    expect(r.body).toContain('nodes watch down');
    await h.eventually('the Lease to be handed back', async () => ((await h.leaseHolder()) === '' ? true : undefined), 15_000);
    expect(await leaderGauge(a)).toBe(0);
    const sick = names[0] ?? '';
    await h.setReady(sick, 'False');
    await sleep(6000);
    expect(await h.reasonsOf(sick)).toEqual([]);
    expect(h.arm.calls).toEqual([]);

    await plane.kubectl(['apply', '-f', role]);
    await h.leading('replica-a', 60_000);
    await h.eventually('NodeRebootStart once the watch is back', async () => ((await h.reasonsOf(sick)).includes('NodeRebootStart') ? true : undefined), 60_000);
    expect(a.logged('informer list or watch failed; retrying with backoff').length).toBeGreaterThanOrEqual(1);
  }, 240_000);
});

/** A JSON patch of the controller's ClusterRole that leaves Nodes listable and patchable, but not watchable. */
const watchlessNodesPatch = { op: 'replace', path: '/rules/0/verbs', value: ['get', 'list', 'patch'] };
