import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ManagedProcess } from '../cluster/managedProcess.js';
import { freeLoopbackPort } from './agentProcess.js';
import { eventually } from './cliProcess.js';
import { monitoringTool } from './monitoringTools.js';

/** One scrape job: loopback targets, with the labels a Kubernetes scrape would add (node). */
export interface ScrapeJob {
  job: string;
  targets: Array<{ address: string; labels?: Record<string, string> }>;
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval, e.g. '1s'. */
  interval?: string;
  /** host:port of an Alertmanager (v2 API) to send alerts to. */
  alertmanager?: string;
}

export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface ScrapeTarget {
  labels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

/** A node of the PromQL syntax tree that /api/v1/parse_query answers (web/api/v1/translate_ast.go). */
export interface QueryNode {
  type: string;
  name?: string;
  matchers?: Array<{ name: string; value: string; type: string }>;
  [child: string]: unknown;
}

/**
 * A real Prometheus (the cmd/prometheus build of scripts/monitoring-binaries.sh) for a test:
 * loopback only, a free port, its own folder for config and TSDB, stopped and removed by stop().
 */
export class PrometheusServer {
  private constructor(
    private readonly process: ManagedProcess,
    readonly url: string,
    private readonly dir: string,
  ) {}

  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    const binary = await monitoringTool('prometheus');
    const dir = mkdtempSync(join(tmpdir(), 'nodepulse-prometheus-'));
    mkdirSync(join(dir, 'data'));
    const interval = options.interval ?? '1s';
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: options.jobs.map((job) => ({
        job_name: job.job,
        static_configs: job.targets.map((target) => ({ targets: [target.address], labels: target.labels ?? {} })),
      })),
      ...(options.alertmanager ? { alerting: { alertmanagers: [{ api_version: 'v2', static_configs: [{ targets: [options.alertmanager] }] }] } } : {}),
    };
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    const port = await freeLoopbackPort();
    const process = new ManagedProcess(
      binary,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        // Resolved and still-firing alerts go out at once instead of once a minute.
        '--rules.alert.resend-delay=1s',
        '--log.level=info',
      ],
      join(dir, 'prometheus.log'),
    );
    const server = new PrometheusServer(process, `http://127.0.0.1:${port}`, dir);
    try {
      await eventually(
        'Prometheus to be ready',
        async () => {
          if (!process.running) throw new Error(`prometheus exited:\n${process.logTail()}`);
          return (await fetch(`${server.url}/-/ready`)).ok ? true : undefined;
        },
        60_000,
        [],
        200,
      );
    } catch (error) {
      await server.stop();
      throw new Error(`${(error as Error).message}\n${process.logTail()}`);
    }
    return server;
  }

  private async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.error ?? response.status}`);
    return body.data;
  }

  alerts(): Promise<ActiveAlert[]> {
    return this.api<{ alerts: ActiveAlert[] }>('alerts').then((data) => data.alerts);
  }

  targets(): Promise<ScrapeTarget[]> {
    return this.api<{ activeTargets: ScrapeTarget[] }>('targets', { state: 'active' }).then((data) => data.activeTargets);
  }

  /** The state of every alerting rule by name: inactive, pending or firing. */
  async ruleStates(): Promise<Map<string, string>> {
    const data = await this.api<{ groups: Array<{ rules: Array<{ name: string; type: string; state?: string }> }> }>('rules', { type: 'alert' });
    return new Map(data.groups.flatMap((g) => g.rules.map((r) => [r.name, r.state ?? ''] as const)));
  }

  /** An instant query's result; rejects with Prometheus' error (a parse or an evaluation error). */
  query(query: string): Promise<{ resultType: string; result: unknown[] }> {
    return this.api('query', { query });
  }

  /** The syntax tree of a PromQL expression, from Prometheus' own parser; rejects with its error. */
  parseQuery(query: string): Promise<QueryNode> {
    return this.api<QueryNode>('parse_query', { query });
  }

  logTail(lines = 30): string {
    return this.process.logTail(lines);
  }

  async stop(): Promise<void> {
    await this.process.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
