import type { CoreV1Event, V1Deployment, V1Node, V1NodeCondition } from '@kubernetes/client-node';
import type { KubeClient } from '../../common/kube/kubeClient.js';

const enc = encodeURIComponent;

/** The handful of API calls the agent makes, typed with client-node's models (types only). */
export class AgentKubeApi {
  constructor(readonly client: KubeClient) {}

  getNode(name: string, signal?: AbortSignal): Promise<V1Node> {
    return this.client.request<V1Node>('GET', `/api/v1/nodes/${enc(name)}`, { signal });
  }

  /**
   * Strategic merge on the status subresource: conditions merge by `type`, so the kubelet's
   * and other tools' conditions are left as they are. `remove` lists types to delete.
   */
  patchNodeConditions(name: string, conditions: V1NodeCondition[], remove: string[] = []): Promise<V1Node> {
    const list: unknown[] = [...conditions, ...remove.map((type) => ({ type, $patch: 'delete' }))];
    return this.client.request<V1Node>('PATCH', `/api/v1/nodes/${enc(name)}/status`, {
      body: { status: { conditions: list } },
      patch: 'strategic',
    });
  }

  createEvent(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    return this.client.request<CoreV1Event>('POST', `/api/v1/namespaces/${enc(namespace)}/events`, { body: event });
  }

  patchEvent(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<CoreV1Event> {
    return this.client.request<CoreV1Event>('PATCH', `/api/v1/namespaces/${enc(namespace)}/events/${enc(name)}`, {
      body: patch,
      patch: 'merge',
    });
  }

  getDeployment(namespace: string, name: string, signal?: AbortSignal, timeoutMs?: number): Promise<V1Deployment> {
    return this.client.request<V1Deployment>('GET', `/apis/apps/v1/namespaces/${enc(namespace)}/deployments/${enc(name)}`, {
      signal,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
  }

  /** GET through the API server's pod proxy: the API server itself must reach the pod. */
  proxyGetPod(namespace: string, pod: string, port: number, path: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    return this.client.request<string>('GET', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(`${pod}:${port}`)}/proxy/${path.replace(/^\//, '')}`, {
      raw: true,
      timeoutMs,
      signal,
    });
  }
}
