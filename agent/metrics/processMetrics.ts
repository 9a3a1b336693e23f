import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, type MetricsRegistry } from './promText.js';

/**
 * The agent's own process, under the names prom-client's default collectors give them (the
 * dashboard's memory and CPU panels read `nodepulse_process_*`), read at scrape time. The
 * event-loop delay is sampled once a second: a finer sampler wakes the agent a hundred times a
 * second (13.9 against 1.7 CPU s/h, bench/footprint.ts). Returns what stops that sampler.
 */
export function registerProcessMetrics(registry: MetricsRegistry, prefix: string): () => void {
  const started = Date.now() / 1000 - process.uptime();
  const cpuUser = registry.register(new Counter(`${prefix}process_cpu_user_seconds_total`, 'Total user CPU time spent in seconds.'));
  const cpuSystem = registry.register(new Counter(`${prefix}process_cpu_system_seconds_total`, 'Total system CPU time spent in seconds.'));
  const cpuTotal = registry.register(new Counter(`${prefix}process_cpu_seconds_total`, 'Total user and system CPU time spent in seconds.'));
  const startTime = registry.register(new Gauge(`${prefix}process_start_time_seconds`, 'Start time of the process since unix epoch in seconds.'));
  startTime.set({}, Math.round(started));
  const resident = registry.register(new Gauge(`${prefix}process_resident_memory_bytes`, 'Resident memory size in bytes.'));
  const openFds = registry.register(new Gauge(`${prefix}process_open_fds`, 'Number of open file descriptors.'));
  const heapUsed = registry.register(new Gauge(`${prefix}nodejs_heap_size_used_bytes`, 'Process heap size used from Node.js in bytes.'));
  const heapTotal = registry.register(new Gauge(`${prefix}nodejs_heap_size_total_bytes`, 'Process heap size from Node.js in bytes.'));
  const external = registry.register(new Gauge(`${prefix}nodejs_external_memory_bytes`, 'Node.js external memory size in bytes.'));
  const lagP99 = registry.register(new Gauge(`${prefix}nodejs_eventloop_lag_p99_seconds`, 'The 99th percentile of the event loop delay since start, sampled once a second.'));
  const lagMax = registry.register(new Gauge(`${prefix}nodejs_eventloop_lag_max_seconds`, 'The largest event loop delay since start, sampled once a second.'));
  const version = registry.register(new Gauge(`${prefix}nodejs_version_info`, 'Node.js version info.', ['version']));
  version.set({ version: process.version }, 1);
  const delay = monitorEventLoopDelay({ resolution: 1000 });
  delay.enable();
  const seen = { user: 0, system: 0 };
  registry.onCollect(() => {
    const cpu = process.cpuUsage();
    const user = cpu.user / 1e6;
    const system = cpu.system / 1e6;
    cpuUser.inc({}, user - seen.user);
    cpuSystem.inc({}, system - seen.system);
    cpuTotal.inc({}, user - seen.user + (system - seen.system));
    Object.assign(seen, { user, system });
    const memory = process.memoryUsage();
    resident.set({}, memory.rss);
    heapUsed.set({}, memory.heapUsed);
    heapTotal.set({}, memory.heapTotal);
    external.set({}, memory.external);
    openFds.set({}, openFileCount());
    // The histogram holds no sample until a second has passed; 0 until then, not NaN.
    lagP99.set({}, delay.count > 0 ? delay.percentile(99) / 1e9 : 0);
    lagMax.set({}, delay.count > 0 ? delay.max / 1e9 : 0);
  });
  return () => delay.disable();
}

function openFileCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}
