import { inject } from 'vitest';
import { ClusterAccess } from './clusterAccess.js';

/** What the global setup hands to every test file about the shared control plane. */
export interface ProvidedCluster {
  /** Admin kubeconfig path. */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** The control plane's temporary folder (ServiceAccount kubeconfigs go there too). */
  workDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ProvidedCluster;
  }
}

/** The run's shared `apiserver`-profile control plane, started by test/cluster/globalSetup.ts. */
export function testCluster(): ClusterAccess {
  const { kubeconfig, workDir } = inject('cluster');
  return new ClusterAccess(kubeconfig, workDir);
}
