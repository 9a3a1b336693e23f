import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/**
 * node-problem-detector, two ways: set up for the same work as our standalone agent (its
 * system-stats monitor with the shipped cpu, memory and disk metric sets and a custom plugin
 * monitor running a DNS lookup script, both every `intervalSeconds`), and as its DaemonSet
 * ships it (startNodeProblemDetectorAsShipped). Its Prometheus exporter on loopback in both.
 */

/** Builds NPD if it is not cached (scripts/build-npd.sh) and returns the binary's path. */
export function nodeProblemDetectorBinary(): string {
  const out = execFileSync('bash', [join(repoRoot(), 'scripts', 'build-npd.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const path = out.trim().split('\n').pop();
  if (!path) throw new Error('scripts/build-npd.sh printed no binary path');
  return path;
}

export function nodeProblemDetectorVersion(binary: string): string {
  return execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
}

// NPD's shipped config/system-stats-monitor.json (v1.36.0), restated as data: its cpu, disk
// and memory sections, and with `host` its host/uptime. osFeature is always left out: it reads
// /proc/modules, which this machine's kernel lacks, and NPD exits at start when it cannot.
const metrics = (names: string[]) => Object.fromEntries(names.map((name) => [name, { displayName: name }]));
function systemStatsConfig(intervalSeconds: number, host = false) {
  return {
    invokeInterval: `${intervalSeconds}s`,
    ...(host ? { host: { metricsConfigs: metrics(['host/uptime']) } } : {}),
    cpu: {
      metricsConfigs: metrics([
        'cpu/load_15m', 'cpu/load_1m', 'cpu/load_5m', 'cpu/runnable_task_count', 'cpu/usage_time',
        'system/cpu_stat', 'system/interrupts_total', 'system/processes_total', 'system/procs_blocked', 'system/procs_running',
      ]),
    },
    disk: {
      includeAllAttachedBlk: true,
      includeRootBlk: true,
      lsblkTimeout: '5s',
      metricsConfigs: metrics([
        'disk/avg_queue_len', 'disk/bytes_used', 'disk/percent_used', 'disk/io_time', 'disk/merged_operation_count',
        'disk/operation_bytes_count', 'disk/operation_count', 'disk/operation_time', 'disk/weighted_io',
      ]),
    },
    memory: {
      metricsConfigs: metrics([
        'memory/anonymous_used', 'memory/bytes_used', 'memory/dirty_used', 'memory/page_cache_used',
        'memory/unevictable_used', 'memory/percent_used',
      ]),
    },
  };
}

function dnsPluginConfig(intervalSeconds: number, scriptPath: string) {
  return {
    plugin: 'custom',
    pluginConfig: { invoke_interval: `${intervalSeconds}s`, timeout: '5s', max_output_length: 80, concurrency: 1 },
    source: 'dns-custom-plugin-monitor',
    metricsReporting: true,
    conditions: [{ type: 'DNSProblem', reason: 'DNSIsUp', message: 'DNS lookup works' }],
    rules: [{ type: 'permanent', condition: 'DNSProblem', reason: 'DNSUnreachable', path: scriptPath, timeout: '3s' }],
  };
}

/** The plugin: exit 0 when the name resolves through `server`, 1 when not (NPD's plugin protocol). */
function dnsScript(host: string, port: number, query: string): string {
  return `#!/bin/sh
# DNS check for node-problem-detector's custom plugin monitor: one lookup through the local test server.
if answer=$(dig @${host} -p ${port} +time=2 +tries=1 +short ${query} A) && [ -n "$answer" ]; then
  echo "DNS lookup of ${query} works"
  exit 0
fi
echo "DNS lookup of ${query} through ${host}:${port} failed"
exit 1
`;
}

export interface NpdRun {
  process: BenchProcess;
  prometheusPort: number;
}

/** NPD's Kubernetes exporter, at its defaults (heartbeat 5 min, events on): where and as whom. */
export interface NpdKubernetesExporter {
  server: string;
  kubeconfig: string;
  nodeName: string;
  /** Its health server (only runs with the exporter). */
  port: number;
}

function kubernetesFlags(kubernetes: NpdKubernetesExporter | undefined): string[] {
  if (!kubernetes) return ['--enable-k8s-exporter=false', '--hostname-override=bench-node'];
  return [
    `--apiserver-override=${kubernetes.server}?inClusterConfig=false&auth=${kubernetes.kubeconfig}`,
    `--hostname-override=${kubernetes.nodeName}`,
    '--address=127.0.0.1',
    `--port=${kubernetes.port}`,
  ];
}

export function startNodeProblemDetector(options: {
  binary: string;
  dir: string;
  intervalSeconds: number;
  dns: { host: string; port: number; query: string };
  prometheusPort: number;
  kubernetes?: NpdKubernetesExporter;
}): NpdRun {
  const { dir, kubernetes } = options;
  const scriptPath = join(dir, 'check_dns.sh');
  writeFileSync(scriptPath, dnsScript(options.dns.host, options.dns.port, options.dns.query));
  chmodSync(scriptPath, 0o755);
  const statsPath = join(dir, 'system-stats-monitor.json');
  writeFileSync(statsPath, JSON.stringify(systemStatsConfig(options.intervalSeconds), null, 2));
  const pluginPath = join(dir, 'dns-plugin-monitor.json');
  writeFileSync(pluginPath, JSON.stringify(dnsPluginConfig(options.intervalSeconds, scriptPath), null, 2));
  const process = BenchProcess.start(
    'node-problem-detector',
    options.binary,
    [
      ...kubernetesFlags(kubernetes),
      '--prometheus-address=127.0.0.1',
      `--prometheus-port=${options.prometheusPort}`,
      `--config.system-stats-monitor=${statsPath}`,
      `--config.custom-plugin-monitor=${pluginPath}`,
    ],
    { logPath: join(dir, 'npd.log'), cwd: dir },
  );
  return { process, prometheusPort: options.prometheusPort };
}

/** NPD's shipped system-log-monitor files for /dev/kmsg, unchanged (test/fixtures/npd, same content as v1.36.0's config/). */
export const npdKernelLogMonitorFiles = ['kernel-monitor.json', 'readonly-monitor.json'].map((name) => join(repoRoot(), 'test', 'fixtures', 'npd', name));

/** The shipped system-stats monitor's interval (config/system-stats-monitor.json). */
export const NPD_SHIPPED_STATS_INTERVAL_SECONDS = 60;

/**
 * NPD as its DaemonSet ships it (deployment/node-problem-detector.yaml of v1.36.0, privileged,
 * /dev/kmsg mounted): the kernel and read-only monitors on the real /dev/kmsg (its `kmsg`
 * plugin, as root), with the system-stats monitor the issue adds (shipped metric sets and
 * interval, osFeature left out: see systemStatsConfig) and its Kubernetes exporter writing
 * conditions and Events for `kubernetes.nodeName`. Left out, because they cannot run here:
 * docker-monitor.json (the journald plugin: this build has no cgo, and there is no journal or
 * dockerd) and the health checkers of node-problem-detector-healthchecker.yaml (they ask
 * systemd, `systemctl show <unit>`, for the kubelet's or containerd's uptime and repair with
 * `systemctl kill`; no systemd runs here, nor a kubelet on :10248).
 */
export function startNodeProblemDetectorAsShipped(options: {
  binary: string;
  dir: string;
  prometheusPort: number;
  kubernetes: NpdKubernetesExporter;
  /** More system-log-monitor files beside the shipped two (a benchmark's own rules). */
  extraLogMonitors?: string[];
}): NpdRun {
  const statsPath = join(options.dir, 'npd-shipped-system-stats-monitor.json');
  writeFileSync(statsPath, JSON.stringify(systemStatsConfig(NPD_SHIPPED_STATS_INTERVAL_SECONDS, true), null, 2));
  const process = BenchProcess.start(
    'node-problem-detector as shipped',
    options.binary,
    [
      '--logtostderr',
      ...kubernetesFlags(options.kubernetes),
      '--prometheus-address=127.0.0.1',
      `--prometheus-port=${options.prometheusPort}`,
      `--config.system-log-monitor=${[...npdKernelLogMonitorFiles, ...(options.extraLogMonitors ?? [])].join(',')}`,
      `--config.system-stats-monitor=${statsPath}`,
    ],
    { logPath: join(options.dir, 'npd-shipped.log'), cwd: options.dir },
  );
  return { process, prometheusPort: options.prometheusPort };
}
