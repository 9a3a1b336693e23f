import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where and how to reach the API server: what the agent's small client needs, no more. */
export interface KubeCredentials {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** A static token, or a file re-read on rotation (projected ServiceAccount tokens). */
  token?: string;
  tokenFile?: string;
  insecureSkipTLSVerify: boolean;
  tlsServerName?: string;
  /** Where the credentials came from, for error messages. */
  source: string;
}

export class KubeCredentialsError extends Error {
  override name = 'KubeCredentialsError';
}

/** In-cluster credentials from the ServiceAccount mount and the service environment. */
export function inClusterCredentials(env: NodeJS.ProcessEnv, dir: string): KubeCredentials {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) {
    throw new KubeCredentialsError(
      'not running in a cluster (KUBERNETES_SERVICE_HOST is unset): set kubeconfig in the config or KUBECONFIG to run off-cluster',
    );
  }
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    ca: readOrExplain(join(dir, 'ca.crt'), 'the ServiceAccount CA; is automountServiceAccountToken off?'),
    tokenFile: join(dir, 'token'),
    insecureSkipTLSVerify: false,
    source: 'in-cluster ServiceAccount',
  };
}

export function readOrExplain(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new KubeCredentialsError(`cannot read ${path} (${what}): ${(err as Error).message}`);
  }
}
