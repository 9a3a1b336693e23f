import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { ClusterAccess } from '../cluster/clusterAccess.js';
import { writeKubeconfig } from '../cluster/kubeconfig.js';

/**
 * A kubeconfig for a pod's ServiceAccount with a token bound to that pod, as the kubelet mounts
 * it: the API server then knows the pod and its node (user extra
 * `authentication.kubernetes.io/pod-name` and `.../node-name`). Returns its path.
 */
export async function podBoundKubeconfig(cluster: ClusterAccess, pod: V1Pod): Promise<string> {
  const { name, namespace, uid } = pod.metadata ?? {};
  const serviceAccount = pod.spec?.serviceAccountName;
  if (!name || !namespace || !uid || !serviceAccount) {
    throw new Error(`pod ${namespace}/${name} lacks a name, namespace, uid or serviceAccountName to bind a token to`);
  }
  const admin = cluster.adminKubeConfig();
  const response = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid } } },
  });
  const token = response.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} bound to pod ${name} returned no token`);
  const caData = admin.getCurrentCluster()?.caData;
  if (!caData) throw new Error(`${cluster.kubeconfig} has no certificate-authority-data`);
  const path = join(cluster.workDir, `pod-${namespace}-${name}.kubeconfig`);
  writeKubeconfig(path, {
    server: cluster.server,
    caPem: Buffer.from(caData, 'base64').toString('utf8'),
    token,
    user: `system:serviceaccount:${namespace}:${serviceAccount}`,
  });
  return path;
}
