import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess } from './benchProcess.js';
import { repoRoot } from './benchOutput.js';

/**
 * node-problem-detector set up the way an operator runs it for the same work as our agent:
 * its system-stats monitor (the shipped cpu, memory and disk metric sets) and a custom plugin
 * monitor running a DNS lookup script, both every `intervalSeconds`, with no Kubernetes
 * exporter and its Prometheus exporter on loopback.
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

// NPD's shipped config/system-stats-monitor.json, cpu/disk/memory sections (host and osFeature
// left out: our agent does no such work).
const metrics = (names: string[]) => Object.fromEntries(names.map((name) => [name, { displayName: name }]));
function systemStatsConfig(intervalSeconds: number) {
  return {
    invokeInterval: `${intervalSeconds}s`,
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
      ...(kubernetes
        ? [
            `--apiserver-override=${kubernetes.server}?inClusterConfig=false&auth=${kubernetes.kubeconfig}`,
            `--hostname-override=${kubernetes.nodeName}`,
            '--address=127.0.0.1',
            `--port=${kubernetes.port}`,
          ]
        : ['--enable-k8s-exporter=false', '--hostname-override=bench-node']),
      '--prometheus-address=127.0.0.1',
      `--prometheus-port=${options.prometheusPort}`,
      `--config.system-stats-monitor=${statsPath}`,
      `--config.custom-plugin-monitor=${pluginPath}`,
    ],
    { logPath: join(dir, 'npd.log'), cwd: dir },
  );
  return { process, prometheusPort: options.prometheusPort };
}
