import { KubeConfig } from '@kubernetes/client-node';
import { readCluster } from './clusterReads.js';
import { diagnose } from './diagnose.js';
import { UsageError } from './errors.js';
import type { DoctorOptions } from './options.js';
import type { DoctorReport } from './report.js';

/** The kubeconfig the way kubectl picks it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context over its current one. */
export function loadKubeConfig(options: Pick<DoctorOptions, 'kubeconfig' | 'context'>): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (options.kubeconfig !== undefined) kubeConfig.loadFromFile(options.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (err) {
    const which = options.kubeconfig !== undefined ? `--kubeconfig: cannot read ${options.kubeconfig}` : 'cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config)';
    throw new UsageError(`${which}: ${(err as Error).message}`);
  }
  if (options.context !== undefined) {
    if (!kubeConfig.getContextObject(options.context)) {
      const known = kubeConfig.getContexts().map((c) => c.name);
      throw new UsageError(`--context: there is no context "${options.context}" in the kubeconfig; it has ${known.length > 0 ? known.join(', ') : 'none'}`);
    }
    kubeConfig.setCurrentContext(options.context);
  }
  return kubeConfig;
}

export async function runDoctor(options: DoctorOptions, now: () => number = Date.now): Promise<DoctorReport> {
  const kubeConfig = loadKubeConfig(options);
  const facts = await readCluster(kubeConfig, {
    pageSize: options.pageSize,
    ...(options.selector !== undefined ? { selector: options.selector } : {}),
    ...(options.node !== undefined ? { node: options.node } : {}),
  });
  return diagnose(facts, {
    now: now(),
    agentHeartbeatSeconds: options.agentHeartbeatSeconds,
    eventWindowMs: options.eventWindowMs,
    cluster: { server: kubeConfig.getCurrentCluster()?.server ?? '', context: kubeConfig.getCurrentContext() || null },
    ...(options.selector !== undefined ? { selector: options.selector } : {}),
    ...(options.node !== undefined ? { node: options.node } : {}),
  });
}
