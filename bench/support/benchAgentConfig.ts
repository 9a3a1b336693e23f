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
    },
  };
}
