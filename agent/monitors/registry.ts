import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import { KernelLogMonitor } from './kernelMonitor.js';
import type { Monitor } from './monitor.js';

/** The streaming monitors the config switches on. */
export function buildMonitors(config: AgentConfig, log: Logger): Monitor[] {
  const monitors: Monitor[] = [];
  const kernel = config.monitors.kernel;
  if (kernel.enabled) {
    monitors.push(
      new KernelLogMonitor(
        kernel.ruleSets,
        {
          kmsgPath: kernel.kmsgPath,
          procRoot: config.procRoot,
          sysRoot: config.sysRoot,
          readonlyPaths: kernel.readonlyPaths.length > 0 ? kernel.readonlyPaths : config.probes.diskSpace.paths,
          mountCheckMs: kernel.mountCheckSeconds * 1000,
          lostReportMs: 60_000,
        },
        log.child({ monitor: 'kernel' }),
      ),
    );
  }
  return monitors;
}
