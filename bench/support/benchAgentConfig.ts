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
