import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../test/cluster/controlPlane.js';
import { writeKubeconfig } from '../../test/cluster/kubeconfig.js';
import { repoRoot } from './benchOutput.js';

/**
 * The test control plane (etcd + kube-apiserver on loopback) set up for agents to run in it as
 * their real ServiceAccount: namespace, RBAC from manifests/, and one Node (and, for the
 * konnectivity path probe, one Pod object) per agent.
 */
export class BenchCluster {
  readonly admin: KubeConfig;
  readonly core: CoreV1Api;

  private constructor(
    readonly plane: ControlPlane,
    /** Kubeconfig of the nodepulse-agent ServiceAccount. */
    readonly agentKubeconfig: string,
  ) {
    this.admin = plane.adminKubeConfig();
    this.core = this.admin.makeApiClient(CoreV1Api);
  }

  static async start(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<BenchCluster> {
    const plane = await startControlPlane({ profile: 'apiserver', log });
    try {
      const manifests = join(repoRoot(), 'manifests', 'base');
      await plane.kubectl(['apply', '-f', join(manifests, 'namespace.yaml'), '-f', join(manifests, 'agent-rbac.yaml')]);
      return new BenchCluster(plane, await plane.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent'));
    } catch (err) {
      await plane.stop();
      throw err;
    }
  }

  /**
   * What the kubelet mounts into the agent's pod: the ServiceAccount's token and CA in a
   * folder, and the service environment pointing at this API server, so an agent runs the
   * in-cluster path of a real pod rather than the kubeconfig one.
   */
  serviceAccountMount(dir: string): { dir: string; env: NodeJS.ProcessEnv } {
    const config = new KubeConfig();
    config.loadFromFile(this.agentKubeconfig);
    const token = config.getCurrentUser()?.token;
    const cluster = config.getCurrentCluster();
    if (!token || !cluster?.caData) throw new Error(`${this.agentKubeconfig} has no token or no certificate-authority-data`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), token, { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), Buffer.from(cluster.caData, 'base64'));
    writeFileSync(join(dir, 'namespace'), 'nodepulse');
    const server = new URL(cluster.server);
    // KUBECONFIG emptied so that a kubeconfig in the bench's own environment cannot take over.
    return { dir, env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port, KUBECONFIG: '' } };
  }

  /** The API server's own serving pair (self-signed for 127.0.0.1), for a proxy that stands in for it. */
  servingCertificate(): { certFile: string; keyFile: string } {
    const certs = join(this.plane.workDir, 'certs');
    return { certFile: join(certs, 'apiserver.crt'), keyFile: join(certs, 'apiserver.key') };
  }

  /** An admin kubeconfig that reaches the API server through `server` (a proxy in front of it); returns its path. */
  adminKubeconfigVia(server: string, path: string): string {
    const cluster = this.admin.getCurrentCluster();
    const token = this.admin.getCurrentUser()?.token;
    if (!cluster?.caData || !token) throw new Error(`${this.plane.kubeconfig} has no certificate-authority-data or no token`);
    writeKubeconfig(path, { server, caPem: Buffer.from(cluster.caData, 'base64').toString('utf8'), token, user: 'nodepulse-admin' });
    return path;
  }

  async createNode(name: string): Promise<void> {
    await this.core.createNode({ body: { metadata: { name } } });
  }

  /** The agent's own Pod object on `node`, with the pod IP the API server's proxy will dial. */
  async createAgentPod(options: { name: string; node: string; port: number; podIP: string; hostIP: string }): Promise<void> {
    await this.core.createNamespacedPod({
      namespace: 'nodepulse',
      body: {
        metadata: { name: options.name, labels: { app: 'nodepulse-agent' } },
        spec: { nodeName: options.node, hostNetwork: true, containers: [{ name: 'agent', image: 'nodepulse/agent:bench', ports: [{ containerPort: options.port }] }] },
      },
    });
    await this.core.patchNamespacedPodStatus(
      {
        namespace: 'nodepulse',
        name: options.name,
        body: { status: { phase: 'Running', podIP: options.podIP, podIPs: [{ ip: options.podIP }], hostIP: options.hostIP } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Our condition types on a Node (type -> status/reason). */
  async nodeConditions(name: string): Promise<Record<string, { status: string; reason: string }>> {
    const node = await this.core.readNode({ name });
    return Object.fromEntries((node.status?.conditions ?? []).map((c) => [c.type, { status: c.status, reason: c.reason ?? '' }]));
  }

  stop(): Promise<void> {
    return this.plane.stop();
  }
}
