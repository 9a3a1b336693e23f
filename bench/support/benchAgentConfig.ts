import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from './benchOutput.js';

/** Agent configs the benchmarks run: probes every 10 s and DNS through the local test server only. */

export const PROBE_INTERVAL_SECONDS = 10;

/** Standalone: the work NPD's system-stats monitor and a DNS plugin do (cpu, memory, disk, one lookup). */
export function standaloneAgentConfig(options: { port: number; dnsServer: string; query: string }) {
  const every = { intervalSeconds: PROBE_INTERVAL_SECONDS };
  return {
    server: { address: '127.0.0.1', port: options.port },
    probes: {
      cpu: every,
      memory: every,
      diskIO: every,
      diskSpace: every,
      dns: { ...every, checks: [{ name: 'BenchDNS', server: options.dnsServer, query: options.query }] },
      pid: { enabled: false },
      kubelet: { enabled: false },
      konnectivity: { enabled: false },
    },
  };
}

/**
 * In-cluster, every probe on at its default interval, publisher running as the agent's
 * ServiceAccount from its mounted token (as in a pod); the targets that would leave the
 * machine point at local stand-ins.
 */
export function inClusterAgentConfig(options: {
  nodeName: string;
  serviceAccountDir: string;
  address: string;
  port: number;
  dnsServer: string;
  query: string;
  kubeletUrl: string;
  podName: string;
  /** The agent config's `monitors` section (default: none on). */
  monitors?: object;
  /** The runtime probe's socket, when the machine has a CRI runtime to ask. */
  runtimeSocket?: string;
}) {
  return {
    nodeName: options.nodeName,
    serviceAccountDir: options.serviceAccountDir,
    server: { address: options.address, port: options.port },
    publish: { enabled: true },
    probes: {
      dns: { checks: [{ name: 'BenchDNS', server: options.dnsServer, query: options.query }] },
      kubelet: { url: options.kubeletUrl },
      konnectivity: { podName: options.podName, podNamespace: 'nodepulse' },
      ...(options.runtimeSocket ? { runtime: { enabled: true, socketPath: options.runtimeSocket } } : {}),
    },
    ...(options.monitors ? { monitors: options.monitors } : {}),
  };
}

interface ShippedAgentConfig {
  monitors?: object;
  probes?: { runtime?: { enabled?: boolean; socketPath?: string } };
}

function shippedAgentConfig(): ShippedAgentConfig {
  return parse(readFileSync(join(repoRoot(), 'manifests', 'base', 'agent-config.yaml'), 'utf8')) as ShippedAgentConfig;
}

/**
 * The `monitors` section the DaemonSet ships (manifests/base/agent-config.yaml): the kernel
 * monitor on /dev/kmsg with the built-in rules, the restart monitor; paths as in the agent's
 * defaults (/proc of this machine, not the DaemonSet's /host/proc mount).
 */
export function shippedMonitors(): object {
  const monitors = shippedAgentConfig().monitors;
  if (!monitors) throw new Error('manifests/base/agent-config.yaml has no monitors section');
  return monitors;
}

/** The CRI socket the shipped runtime probe asks, if it exists on this machine (else the probe cannot run here). */
export function shippedRuntimeSocket(): { path: string; present: boolean } | undefined {
  const runtime = shippedAgentConfig().probes?.runtime;
  if (!runtime?.enabled) return undefined;
  const path = runtime.socketPath ?? '/run/containerd/containerd.sock';
  return { path, present: existsSync(path) };
}
