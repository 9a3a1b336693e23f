import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import type { CliProcess } from '../support/cliProcess.js';
import { TestDnsServer } from '../support/dnsServer.js';
import { COLD_BUILD_TIMEOUT_MS } from '../support/monitoringTools.js';
import { PrometheusServer, type QueryNode } from '../support/prometheusServer.js';
import { RemediationHarness } from '../support/remediationHarness.js';

/**
 * The Grafana dashboard and the alert rules are only as good as the names they query: every
 * query must parse (Prometheus' own parser) and evaluate, and every metric it names must be in a
 * real scrape of the agent or the controller, so renaming a metric breaks this test, not an
 * operator's dashboard. Grafana itself is not needed (nor used: its server is AGPL).
 */
const monitoring = fileURLToPath(new URL('../../manifests/monitoring', import.meta.url));
const dashboard = JSON.parse(readFileSync(join(monitoring, 'nodepulse-dashboard.json'), 'utf8')) as Dashboard;
const rules = parse(readFileSync(join(monitoring, 'nodepulse.rules.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
}

/** Labels Prometheus puts on every series of a target (job, instance) and those a Kubernetes scrape adds. */
const targetLabels = new Set(['job', 'instance', 'node', 'pod', 'namespace', 'container', 'endpoint', 'cluster']);
/** Series Prometheus itself writes for every target. */
const prometheusSeries = new Set(['up']);

/** Grafana's built-in and the dashboard's own variables, replaced as Grafana would before sending a query. */
function substituted(expr: string): string {
  const variables = new Set(dashboard.templating.list.map((v) => v.name));
  return expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => {
    if (/^\d+$/.test(name)) return whole; // label_replace's $1
    if (name === '__rate_interval' || name === '__interval') return '1m';
    if (name === '__range') return '1h';
    if (!variables.has(name)) throw new Error(`${expr}: $${name} is not a variable of the dashboard`);
    return '.*';
  });
}

/** Every query of the dashboard, by where it is: panel targets and the variables' label_values(). */
function dashboardQueries(): Array<{ where: string; expr: string }> {
  const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
  const fromPanels = panels(dashboard.panels).flatMap((panel) => (panel.targets ?? []).map((t) => ({ where: `panel "${panel.title}"`, expr: substituted(t.expr) })));
  const fromVariables = dashboard.templating.list.flatMap((variable) => {
    const text = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    const selector = variable.type === 'query' && text ? /^label_values\((.+),\s*\w+\)$/.exec(text)?.[1] : undefined;
    if (variable.type === 'query' && !selector) throw new Error(`variable ${variable.name}: not a label_values(<selector>, <label>) query: ${text}`);
    return selector ? [{ where: `variable $${variable.name}`, expr: substituted(selector) }] : [];
  });
  return [...fromPanels, ...fromVariables];
}

/** The series selectors of a syntax tree: metric name and label matchers. */
function selectors(node: unknown): Array<{ metric: string; labels: Map<string, string> }> {
  if (typeof node !== 'object' || node === null) return [];
  const record = node as QueryNode;
  const here =
    record.type === 'vectorSelector' || record.type === 'matrixSelector'
      ? [
          {
            metric: record.name || (record.matchers?.find((m) => m.name === '__name__')?.value ?? ''),
            labels: new Map((record.matchers ?? []).filter((m) => m.name !== '__name__').map((m) => [m.name, m.type === '=' ? m.value : ''])),
          },
        ]
      : [];
  return [...here, ...Object.values(record).flatMap((child) => (Array.isArray(child) ? child.flatMap(selectors) : selectors(child)))];
}

/** What one target exposes: its metric families by type, every series name, and the labels its samples carry. */
interface Exposition {
  families: Map<string, string>;
  names: Set<string>;
  labels: Map<string, Set<string>>;
}

function exposition(text: string): Exposition {
  const families = new Map<string, string>();
  const names = new Set<string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      const [, name = '', kind = ''] = type;
      families.set(name, kind);
      const suffixes = kind === 'histogram' ? ['_bucket', '_count', '_sum'] : kind === 'summary' ? ['', '_count', '_sum'] : [''];
      for (const suffix of suffixes) names.add(name + suffix);
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s/.exec(line);
    if (!sample) continue;
    const [, name = '', labelText = ''] = sample;
    names.add(name);
    const own = labels.get(name) ?? new Set<string>();
    for (const match of labelText.matchAll(/(\w+)="/g)) own.add(match[1] ?? '');
    labels.set(name, own);
  }
  return { families, names, labels };
}

/** The rows of the README's metric reference: metric (or a `prefix_*` family), type, labels. */
function metricReference(): Array<{ metric: string; type: string; labels: string[] }> {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const section = /\n## Metric reference\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
  return [...section.matchAll(/^\| `([^`]+)`(?:, `([^`]+)`)? \|\s*(\w*)\s*\|([^|]*)\|/gm)].flatMap(([, first = '', second, type = '', labels = '']) =>
    [first, ...(second ? [second] : [])].map((metric) => ({ metric, type, labels: [...labels.matchAll(/`(\w+)`/g)].map((m) => m[1] ?? '') })),
  );
}

describe('the Grafana dashboard and the alert rules against a real agent, a real controller and a real Prometheus', () => {
  const work = mkdtempSync(join(tmpdir(), 'nodepulse-dashboard-'));
  let dns: TestDnsServer;
  let agent: CliProcess;
  let harness: RemediationHarness;
  let controller: CliProcess;
  let prometheus: PrometheusServer;
  let scraped: Record<'nodepulse-agent' | 'nodepulse-controller', Exposition>;

  beforeAll(async () => {
    dns = await TestDnsServer.start();
    const agentPort = await freeLoopbackPort();
    // Every probe on (konnectivity needs the API server and is skipped standalone), DNS against
    // the test server only, the kubelet at a port where nothing answers: its failure series exist too.
    agent = AgentProcess.start(work, 'agent', {
      nodeName: 'node-a',
      server: { address: '127.0.0.1', port: agentPort },
      probes: {
        cpu: { intervalSeconds: 1 },
        memory: { intervalSeconds: 1 },
        pid: { intervalSeconds: 1 },
        diskIO: { intervalSeconds: 1 },
        diskSpace: { intervalSeconds: 1 },
        dns: { intervalSeconds: 1, timeoutMs: 500, checks: [{ name: 'ClusterDNS', server: dns.address, query: 'kubernetes.default.svc.cluster.local' }] },
        kubelet: { intervalSeconds: 1, timeoutMs: 500, url: `http://127.0.0.1:${await freeLoopbackPort()}/healthz` },
      },
    });
    harness = await RemediationHarness.start(testCluster());
    const pool = await harness.createPool(2);
    controller = harness.startReplica('controller-0', harness.controllerConfig(pool.pool, { provider: { type: 'dry-run' } }));
    await harness.leading('controller-0');
    const controllerPort = await harness.metricsPort(controller);

    const agentUrl = `http://127.0.0.1:${agentPort}/metrics`;
    const controllerUrl = `http://127.0.0.1:${controllerPort}/metrics`;
    // Wait for the kubelet check to have failed once, so its labelled series are in the scrape.
    const agentText = await eventually('the agent to report its failing kubelet check', async () => {
      const text = await (await fetch(agentUrl)).text();
      return /nodepulse_probe_failures_total\{probe="kubelet"/.test(text) ? text : undefined;
    }, 30_000, agent);
    scraped = {
      'nodepulse-agent': exposition(agentText),
      'nodepulse-controller': exposition(await (await fetch(controllerUrl)).text()),
    };
    prometheus = await PrometheusServer.start({
      jobs: [
        { job: 'nodepulse-agent', targets: [{ address: `127.0.0.1:${agentPort}`, labels: { node: 'node-a' } }] },
        { job: 'nodepulse-controller', targets: [{ address: `127.0.0.1:${controllerPort}`, labels: { pod: 'controller-0' } }] },
      ],
      interval: '1s',
    });
    await eventually('both targets scraped', async () => ((await prometheus.targets()).every((t) => t.health === 'up') ? true : undefined), 30_000, [agent, controller]);
  }, COLD_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await prometheus?.stop();
    await agent?.stop();
    await harness?.close();
    await dns?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** What is wrong with one query: a metric no scrape has, a label its series do not carry. */
  async function problemsOf(where: string, expr: string): Promise<string[]> {
    const tree = await prometheus.parseQuery(expr).catch((error: Error) => error);
    if (tree instanceof Error) return [`${where}: does not parse: ${tree.message}`];
    const evaluated = await prometheus.query(expr).catch((error: Error) => error);
    if (evaluated instanceof Error) return [`${where}: does not evaluate: ${evaluated.message}`];
    return selectors(tree).flatMap(({ metric, labels }) => {
      if (metric === '') return [`${where}: a selector without a metric name`];
      if (prometheusSeries.has(metric)) return [];
      const job = labels.get('job');
      const candidates = job === 'nodepulse-agent' || job === 'nodepulse-controller' ? [scraped[job]] : Object.values(scraped);
      const target = candidates.find((c) => c.names.has(metric));
      if (!target) return [`${where}: ${metric} is in no scrape${job ? ` of ${job}` : ''}`];
      const own = target.labels.get(metric);
      // Labels can be checked only on series that have samples in the scrape.
      const unknown = own ? [...labels.keys()].filter((l) => !targetLabels.has(l) && !own.has(l)) : [];
      return unknown.map((l) => `${where}: ${metric} has no label ${l} (it has ${[...own ?? []].join(', ')})`);
    });
  }

  it('has a query in every panel and variables for cluster and node', () => {
    const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
    const empty = panels(dashboard.panels).filter((p) => p.type !== 'row' && (p.targets ?? []).length === 0).map((p) => p.title);
    expect(empty).toEqual([]);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'cluster', 'node']);
  });

  it('parses and evaluates every dashboard query, and every metric and label it names is in the scrape of the agent or the controller', async () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(20);
    const problems = (await Promise.all(queries.map((q) => problemsOf(q.where, q.expr)))).flat();
    expect(problems).toEqual([]);
  });

  it('shows the familiar node-problem-detector panels: problem_counter and problem_gauge', () => {
    const names = new Set(dashboardQueries().flatMap((q) => [...q.expr.matchAll(/\b(problem_counter|problem_gauge)\b/g)].map((m) => m[1])));
    expect([...names].sort()).toEqual(['problem_counter', 'problem_gauge']);
  });

  it("is matched by the README's metric reference: every metric the agent and the controller expose, with its type and labels", () => {
    const reference = metricReference();
    const families = reference.filter((r) => r.metric.endsWith('*')).map((r) => r.metric.slice(0, -1));
    const exact = new Map(reference.filter((r) => !r.metric.endsWith('*')).map((r) => [r.metric, r]));
    const exposed = new Map(Object.values(scraped).flatMap((e) => [...e.families]));
    const problems = [
      ...[...exposed.keys()].filter((name) => !exact.has(name) && !families.some((prefix) => name.startsWith(prefix))).map((name) => `${name}: exposed, not in the reference`),
      ...[...exact.keys()].filter((name) => !exposed.has(name)).map((name) => `${name}: in the reference, exposed by neither program`),
      ...[...exact.values()].flatMap(({ metric, type, labels }) => {
        const kind = exposed.get(metric);
        const seen = [...(Object.values(scraped).find((e) => e.labels.has(metric))?.labels.get(metric) ?? [])].filter((l) => l !== 'le');
        return [
          ...(kind !== undefined && kind !== type ? [`${metric}: documented as ${type}, exposed as ${kind}`] : []),
          ...seen.filter((l) => !labels.includes(l)).map((l) => `${metric}: label ${l} not documented`),
          ...(seen.length > 0 ? labels.filter((l) => !seen.includes(l)).map((l) => `${metric}: documented label ${l} not on its series`) : []),
        ];
      }),
    ];
    expect(reference.length).toBeGreaterThan(15);
    expect(problems).toEqual([]);
  });

  it('names only metrics the agent and the controller expose in every alert rule', async () => {
    const problems = (
      await Promise.all(rules.groups.flatMap((g) => g.rules).map((rule) => problemsOf(`alert ${rule.alert}`, rule.expr)))
    ).flat();
    expect(problems).toEqual([]);
  });
});
