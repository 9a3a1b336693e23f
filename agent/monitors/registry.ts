import type { Logger } from '../../common/log.js';
import type { AgentConfig } from '../config/schema.js';
import { restartConditionTypes } from '../../common/contract.js';
import { CustomPluginMonitor, pluginMonitorName } from './customPluginMonitor.js';
import { KernelLogMonitor } from './kernelMonitor.js';
import type { Monitor } from './monitor.js';
import { RestartMonitor, type RestartWatch } from './restartMonitor.js';

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
  const restarts = config.monitors.restarts;
  if (restarts.enabled) {
    const watches: RestartWatch[] = [
      { condition: restartConditionTypes.kubelet, process: restarts.kubeletProcess },
      { condition: restartConditionTypes.containerd, process: restarts.containerdProcess },
    ].filter((w) => w.process !== '');
    monitors.push(
      new RestartMonitor(
        watches,
        { procRoot: config.procRoot, intervalMs: restarts.intervalSeconds * 1000, windowMs: restarts.windowSeconds * 1000, count: restarts.count, rescanMs: 60_000 },
        log.child({ monitor: 'restarts' }),
      ),
    );
  }
  // One monitor per file (sets is empty while customPlugins is off), as NPD runs one per file.
  for (const set of config.monitors.customPlugins.sets) monitors.push(new CustomPluginMonitor(set, log.child({ monitor: pluginMonitorName(set.source) })));
  return monitors;
}
