import type { TestProject } from 'vitest/node';
import { startControlPlane } from './controlPlane.js';
import type {} from './testCluster.js';

/**
 * One `apiserver`-profile control plane for the whole test run: tests isolate themselves by
 * namespace or node name. The returned teardown runs after the tests, whether they passed or not.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const plane = await startControlPlane({ profile: 'apiserver' });
  project.provide('cluster', { kubeconfig: plane.kubeconfig, server: plane.server, workDir: plane.workDir });
  return () => plane.stop();
}
