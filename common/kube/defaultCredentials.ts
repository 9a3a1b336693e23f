import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inClusterCredentials, type KubeCredentials } from './kubeCredentials.js';
import { kubeconfigCredentials } from './kubeconfigFile.js';

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Credentials found the way kubectl and client-node's loadFromDefault() find them: the file
 * named in the config, else the first file in KUBECONFIG, else ~/.kube/config if it exists,
 * else the pod's ServiceAccount.
 */
export function defaultCredentials(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): KubeCredentials {
  if (kubeconfig) return kubeconfigCredentials(kubeconfig);
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p !== '');
  if (fromEnv) return kubeconfigCredentials(fromEnv);
  const inHome = join(home, '.kube', 'config');
  if (home && existsSync(inHome)) return kubeconfigCredentials(inHome);
  return inClusterCredentials(env, serviceAccountDir);
}
