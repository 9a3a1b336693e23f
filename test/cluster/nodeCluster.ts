import { join } from 'node:path';
import { repoRoot } from './binaries.js';
import { type ControlPlane, startControlPlane } from './controlPlane.js';
import { buildNodeImage } from './nodeBinaries.js';
import { RealNode } from './realNode.js';

/** The image name the test overlay (test/manifests/real-node) runs; imported under it into the node. */
export const NODE_IMAGE = 'localhost/nodepulse:test';
/** The ConfigMap test/manifests/real-node reads the API server's address from. */
export const APISERVER_CONFIGMAP = 'nodepulse-test-apiserver';

export interface NodeCluster {
  plane: ControlPlane;
  node: RealNode;
  /** The image built from the Dockerfile, as an OCI archive (to import again under other tags). */
  imageArchive: string;
  stop: () => Promise<void>;
}

/**
 * The ConfigMap the test overlay takes KUBERNETES_SERVICE_HOST/PORT from: the API server as the
 * node reaches it (the host end of its veth). It lives in the nodepulse namespace, made here as
 * the manifests make it.
 */
async function pointPodsAtApiserver(plane: ControlPlane): Promise<void> {
  const { hostname, port } = new URL(plane.server);
  await plane.kubectl(['apply', '-f', join(repoRoot(), 'manifests', 'base', 'namespace.yaml')]);
  await plane.kubectl([
    'create', 'configmap', APISERVER_CONFIGMAP, '--namespace', 'nodepulse', `--from-literal=host=${hostname}`, `--from-literal=port=${port}`,
  ]);
}

/**
 * The `node` profile: a real node (kubelet + containerd, namespaces of its own) joined to a
 * `full` control plane (controller-manager, scheduler, kwok with `kwokNodes` simulated nodes)
 * whose API server listens on the host end of the node's veth, with the project's image built
 * from its Dockerfile and imported into the node as NODE_IMAGE.
 */
export async function startNodeCluster(options: { nodeName?: string; kwokNodes?: number; log?: (line: string) => void } = {}): Promise<NodeCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = Date.now();
  const node = await RealNode.prepare({ name: options.nodeName ?? 'real-node-0', log });
  let plane: ControlPlane | undefined;
  try {
    const imageArchive = join(node.dir, 'nodepulse.oci.tar');
    // The image build (minutes when cold) runs while the control plane starts.
    const image = buildNodeImage(imageArchive);
    image.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    plane = await startControlPlane({
      profile: 'full',
      nodes: options.kwokNodes ?? 1,
      address: node.addresses.hostAddress,
      extraApiserverArgs: node.apiserverArgs(),
      // kwok (without leases) re-states its nodes' status about once a minute, past the node
      // lifecycle controller's 50 s default: it would mark the kwok node's pods NotReady now and
      // then, and the DaemonSet's rollout would never finish. The real node's kubelet renews its
      // Lease every 10 s either way.
      extraControllerManagerArgs: ['--node-monitor-grace-period=120s'],
      log,
    });
    await node.join({ server: plane.server, caFile: join(plane.workDir, 'ca.crt'), admin: plane.adminKubeConfig() });
    await pointPodsAtApiserver(plane);
    await image;
    await node.importImage(imageArchive, [NODE_IMAGE]);
    log(`node cluster ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    const ready = plane;
    return {
      plane: ready,
      node,
      imageArchive,
      stop: async () => {
        await node.stop();
        await ready.stop();
      },
    };
  } catch (error) {
    await node.stop().catch(() => undefined);
    await plane?.stop().catch(() => undefined);
    throw error;
  }
}
