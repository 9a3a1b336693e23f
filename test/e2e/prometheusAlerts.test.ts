import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import type { CliProcess } from '../support/cliProcess.js';
import { TestDnsServer } from '../support/dnsServer.js';
import { COLD_BUILD_TIMEOUT_MS } from '../support/monitoringTools.js';
import { onlyProbes } from '../support/onlyProbes.js';
import { type ActiveAlert, PrometheusServer } from '../support/prometheusServer.js';
import { RemediationHarness } from '../support/remediationHarness.js';

/**
 * The shipped alert rules on a real Prometheus that scrapes real agents and a real controller:
 * faults injected on them move the matching alerts from pending to firing, and to resolved
 * (as Prometheus tells an Alertmanager) after recovery.
 *
 * The rules are manifests/monitoring/nodepulse.rules.yaml with every `for:` shortened to
 * FOR_IN_TEST and evaluated every second; expressions, labels and annotations are the shipped
 * ones, so what fires here is what fires in a cluster, minutes sooner.
 */
const FOR_IN_TEST = '3s';
const shippedRules = fileURLToPath(new URL('../../manifests/monitoring/nodepulse.rules.yaml', import.meta.url));

interface RuleFile {
  groups: Array<{ rules: Array<{ alert?: string; for?: string }> }>;
}

function rulesForTest(dir: string): { file: string; alerts: string[] } {
  const rules = parse(readFileSync(shippedRules, 'utf8')) as RuleFile;
  for (const rule of rules.groups.flatMap((g) => g.rules)) if (rule.for !== undefined) rule.for = FOR_IN_TEST;
  const file = join(dir, 'nodepulse.rules.yaml');
  writeFileSync(file, stringify(rules));
  return { file, alerts: rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : []))) };
}

/** What Prometheus posted to the Alertmanager API, as received. */
interface Notification {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  endsAt: string;
  receivedAt: number;
}

/** An Alertmanager stand-in on loopback: it records every alert Prometheus sends it. */
async function startAlertmanager(): Promise<{ server: Server; address: string; received: Notification[] }> {
  const received: Notification[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/api/v2/alerts') {
        for (const alert of JSON.parse(body) as Omit<Notification, 'receivedAt'>[]) received.push({ ...alert, receivedAt: Date.now() });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

/** Every state an alert went through, polled from /api/v1/alerts: 'inactive' while it is not listed. */
class AlertTimeline {
  private readonly seen = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly prometheus: PrometheusServer) {}

  static key(alertname: string, node?: string): string {
    return node ? `${alertname}@${node}` : alertname;
  }

  start(): void {
    const poll = async () => {
      const active = await this.prometheus.alerts().catch(() => undefined);
      if (active) this.record(active);
      this.timer = setTimeout(() => void poll(), 200);
    };
    void poll();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private record(active: readonly ActiveAlert[]): void {
    const now = new Map(active.map((a) => [AlertTimeline.key(a.labels.alertname ?? '', a.labels.node), a.state]));
    for (const key of new Set([...this.seen.keys(), ...now.keys()])) {
      const states = this.seen.get(key) ?? ['inactive'];
      const state = now.get(key) ?? 'inactive';
      if (states.at(-1) !== state) states.push(state);
      this.seen.set(key, states);
    }
  }

  states(key: string): string[] {
    return this.seen.get(key) ?? ['inactive'];
  }
}

describe('the shipped alert rules on a real Prometheus scraping real agents and a real controller', () => {
  const work = mkdtempSync(join(tmpdir(), 'nodepulse-alerts-e2e-'));
  const nodes = ['node-a', 'node-b'];
  const agents: CliProcess[] = [];
  let dns: TestDnsServer;
  let harness: RemediationHarness;
  let controller: CliProcess;
  let pool: { pool: string; names: string[] };
  let alertmanager: Awaited<ReturnType<typeof startAlertmanager>>;
  let prometheus: PrometheusServer;
  let timeline: AlertTimeline;
  let shippedAlerts: string[];

  const activeAlerts = () => prometheus.alerts();
  const firing = async (key: string) => (await activeAlerts()).find((a) => AlertTimeline.key(a.labels.alertname ?? '', a.labels.node) === key && a.state === 'firing');
  const involved = () => [...agents, controller];
  /** Waits until the timeline has seen `key` reach `state`; returns every state it went through. */
  const reached = (key: string, state: string) =>
    eventually(`${key} ${state}`, async () => (timeline.states(key).at(-1) === state ? timeline.states(key) : undefined), 60_000, involved());

  beforeAll(async () => {
    dns = await TestDnsServer.start({ records: { A: ['10.0.0.10'] } });
    alertmanager = await startAlertmanager();
    const agentTargets = [];
    for (const node of nodes) {
      const port = await freeLoopbackPort();
      // The AKS ClusterDNS check, against the test's DNS server; one sample a second.
      const dnsProbe = { intervalSeconds: 1, failureThreshold: 3, recoveryThreshold: 2, timeoutMs: 500, checks: [{ name: 'ClusterDNS', server: dns.address, query: 'kubernetes.default.svc.cluster.local' }] };
      agents.push(AgentProcess.start(work, node, { nodeName: node, server: { address: '127.0.0.1', port }, probes: onlyProbes({ dns: dnsProbe }) }));
      agentTargets.push({ address: `127.0.0.1:${port}`, labels: { node } });
    }

    harness = await RemediationHarness.start(testCluster());
    pool = await harness.createPool(3);
    controller = harness.startReplica('controller-0', harness.controllerConfig(pool.pool, { provider: { type: 'dry-run' } }));
    await harness.leading('controller-0');
    const controllerTarget = { address: `127.0.0.1:${await harness.metricsPort(controller)}`, labels: { pod: 'controller-0' } };

    const rules = rulesForTest(work);
    shippedAlerts = rules.alerts;
    prometheus = await PrometheusServer.start({
      jobs: [
        { job: 'nodepulse-agent', targets: agentTargets },
        { job: 'nodepulse-controller', targets: [controllerTarget] },
      ],
      ruleFiles: [rules.file],
      interval: '1s',
      alertmanager: alertmanager.address,
    });
    timeline = new AlertTimeline(prometheus);
    timeline.start();
  }, COLD_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    timeline?.stop();
    await prometheus?.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await harness?.close();
    await dns?.stop();
    await new Promise((done) => alertmanager?.server.close(done));
    rmSync(work, { recursive: true, force: true });
  });

  it('scrapes both agents and the controller with every shipped rule loaded, and raises nothing while all is well', async () => {
    await eventually(
      'every target up',
      async () => {
        const targets = await prometheus.targets();
        return targets.length === 3 && targets.every((t) => t.health === 'up') ? targets : undefined;
      },
      60_000,
      involved(),
    );
    const states = await prometheus.ruleStates();
    expect([...states.keys()].sort()).toEqual([...shippedAlerts].sort());
    // Several evaluations with every series present (each `for` is 3 s): still nothing active.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(await activeAlerts(), prometheus.logTail()).toEqual([]);
  });

  it("DNS answering SERVFAIL on both nodes raises each node's NodepulseDNSProblem and the cluster-wide NodepulseClusterDNSOutage, pending then firing, resolved once DNS answers again", async () => {
    const perNode = nodes.map((node) => AlertTimeline.key('NodepulseDNSProblem', node));
    const outage = AlertTimeline.key('NodepulseClusterDNSOutage');
    dns.setMode('servfail');
    for (const key of [...perNode, outage]) expect(await reached(key, 'firing'), key).toEqual(['inactive', 'pending', 'firing']);

    // The description names the failing check and its outcome, read from NPD's problem_gauge.
    const nodeAlert = await firing(perNode[0] ?? '');
    expect(nodeAlert?.labels).toMatchObject({ severity: 'warning', type: 'DNSProblem', node: 'node-a', job: 'nodepulse-agent' });
    expect(nodeAlert?.annotations.description).toContain('DNSProblem is True on node node-a, reason ClusterDNSServfail.');
    const outageAlert = await firing(outage);
    expect(outageAlert?.labels).toMatchObject({ severity: 'critical', type: 'DNSProblem' });
    expect(outageAlert?.annotations.summary).toBe('DNS fails on 100% of the nodes at once');
    await eventually('the outage sent to the Alertmanager', async () => alertmanager.received.find((n) => n.labels.alertname === 'NodepulseClusterDNSOutage'), 30_000);

    const resolvedFrom = Date.now();
    dns.setMode('answer');
    for (const key of [...perNode, outage]) expect(await reached(key, 'inactive'), key).toEqual(['inactive', 'pending', 'firing', 'inactive']);
    const states = await prometheus.ruleStates();
    expect([states.get('NodepulseDNSProblem'), states.get('NodepulseClusterDNSOutage')]).toEqual(['inactive', 'inactive']);
    // Prometheus tells the Alertmanager each alert is resolved: it ends before it is received.
    for (const [alertname, node] of [['NodepulseDNSProblem', 'node-a'], ['NodepulseDNSProblem', 'node-b'], ['NodepulseClusterDNSOutage', undefined]] as const) {
      await eventually(
        `${alertname} ${node ?? ''} resolved at the Alertmanager`,
        async () =>
          alertmanager.received.find(
            (n) => n.labels.alertname === alertname && n.labels.node === node && n.receivedAt >= resolvedFrom && Date.parse(n.endsAt) <= n.receivedAt,
          ),
        30_000,
      );
    }
  });

  it('two of three nodes NotReady open the circuit breaker: NodepulseCircuitBreakerOpen goes pending then firing, and resolves when they are Ready again', async () => {
    const key = AlertTimeline.key('NodepulseCircuitBreakerOpen');
    const [first, second] = pool.names as [string, string];
    await Promise.all([harness.setReady(first, 'False'), harness.setReady(second, 'False')]);
    expect(await reached(key, 'firing')).toEqual(['inactive', 'pending', 'firing']);
    expect((await firing(key))?.labels).toMatchObject({ severity: 'critical', job: 'nodepulse-controller' });

    await Promise.all([harness.setReady(first, 'True'), harness.setReady(second, 'True')]);
    expect(await reached(key, 'inactive')).toEqual(['inactive', 'pending', 'firing', 'inactive']);
  });
});
