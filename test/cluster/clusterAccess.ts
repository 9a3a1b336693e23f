import { join } from 'node:path';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { writeKubeconfig } from './kubeconfig.js';
import { type KubectlOptions, kubectl } from './kubectl.js';

/** Lifetime of minted ServiceAccount tokens: longer than any test run. */
const SERVICE_ACCOUNT_TOKEN_SECONDS = 24 * 3600;

/**
 * What a test needs to act on a running control plane: the admin kubeconfig, clients built
 * from it, the real kubectl, and kubeconfigs for ServiceAccounts (so code runs as its real
 * identity and RBAC applies). Works in any process that can read the kubeconfig file.
 */
export class ClusterAccess {
  constructor(
    /** Admin kubeconfig (user in system:masters). */
    readonly kubeconfig: string,
    /** Folder for kubeconfigs minted for ServiceAccounts; removed with the control plane. */
    readonly workDir: string,
  ) {}

  /** client-node configuration for the admin identity. */
  adminKubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromFile(this.kubeconfig);
    return config;
  }

  get server(): string {
    const cluster = this.adminKubeConfig().getCurrentCluster();
    if (!cluster) throw new Error(`${this.kubeconfig} has no current cluster`);
    return cluster.server;
  }

  /** Runs the real kubectl as admin, or as another identity with `kubeconfig` in the options. */
  kubectl(args: readonly string[], options: Partial<KubectlOptions> = {}): Promise<string> {
    return kubectl(args, { kubeconfig: this.kubeconfig, ...options });
  }

  /**
   * Mints a token for an existing ServiceAccount through the TokenRequest API and writes a
   * kubeconfig for that identity; returns its path.
   */
  async serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    const admin = this.adminKubeConfig();
    const cluster = admin.getCurrentCluster();
    if (!cluster?.caData) throw new Error(`${this.kubeconfig} has no certificate-authority-data`);
    let token: string | undefined;
    try {
      const response = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { audiences: [], expirationSeconds: SERVICE_ACCOUNT_TOKEN_SECONDS } },
      });
      token = response.status?.token;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) {
        throw new Error(
          `ServiceAccount ${namespace}/${name} does not exist; create it (apply its manifest) before minting a token`,
        );
      }
      throw error;
    }
    if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    const path = join(this.workDir, `sa-${namespace}-${name}.kubeconfig`);
    writeKubeconfig(path, {
      server: cluster.server,
      caPem: Buffer.from(cluster.caData, 'base64').toString('utf8'),
      token,
      user: `system:serviceaccount:${namespace}:${name}`,
    });
    return path;
  }
}
