import type { AgentConfig } from '../config/schema.js';
import type { ProbeName } from '../../common/contract.js';
import { CpuProbe } from './cpuProbe.js';
import { DiskIOProbe } from './diskIOProbe.js';
import { DiskSpaceProbe } from './diskSpaceProbe.js';
import { DnsProbe } from './dnsProbe.js';
import { KubeletProbe } from './kubeletProbe.js';
import { MemoryProbe } from './memoryProbe.js';
import { PidProbe } from './pidProbe.js';
import type { Probe } from './probe.js';
import { RuntimeProbe } from './runtimeProbe.js';

export type ProbeFactory = (config: AgentConfig) => Probe;

/** Probes that read only the node; probes that need the API server are added by the caller. */
export const nodeProbeFactories: Partial<Record<ProbeName, ProbeFactory>> = {
  cpu: (c) => new CpuProbe(c.probes.cpu, c),
  memory: (c) => new MemoryProbe(c.probes.memory, c),
  pid: (c) => new PidProbe(c.probes.pid, c),
  diskIO: (c) => new DiskIOProbe(c.probes.diskIO, c),
  diskSpace: (c) => new DiskSpaceProbe(c.probes.diskSpace),
  dns: (c) => new DnsProbe(c.profile, c.probes.dns),
  kubelet: (c) => new KubeletProbe(c.probes.kubelet),
  runtime: (c) => new RuntimeProbe(c.probes.runtime),
};

/**
 * The probes the config switches on, in a fixed order. An enabled probe with no factory here
 * or in `extra` needs the API server (konnectivity in standalone mode): it is returned in
 * `skipped` for the caller to report, not run.
 */
export function buildProbes(
  config: AgentConfig,
  extra: Partial<Record<ProbeName, ProbeFactory>> = {},
): { probes: Probe[]; skipped: ProbeName[] } {
  const factories = { ...nodeProbeFactories, ...extra };
  const probes: Probe[] = [];
  const skipped: ProbeName[] = [];
  for (const [name, settings] of Object.entries(config.probes) as Array<[ProbeName, { enabled: boolean }]>) {
    if (!settings.enabled) continue;
    const factory = factories[name];
    if (factory) probes.push(factory(config));
    else skipped.push(name);
  }
  return { probes, skipped };
}
