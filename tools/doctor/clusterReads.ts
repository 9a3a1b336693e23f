import { ApiException, AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { konnectivityDeployment } from '../../common/contract.js';
import { deploymentView, eventView, nodeView, podView, type ClusterFacts, type DeploymentView, type EventView, type NodeView, type PodView } from './clusterFacts.js';
import { grantCommand, requiredAccess } from './access.js';
import { AccessError, UsageError } from './errors.js';

/**
 * Every read the doctor makes, and nothing else: it is read-only by construction. Lists come
 * in pages (`limit` + `continue`), each page cut down to what the steps read before the next
 * is asked for; the four reads run side by side, so at most four requests are in flight
 * however large the cluster.
 */
export interface ReadOptions {
  /** Label selector for the nodes (-l). */
  selector?: string;
  /** One node only (--node). */
  node?: string;
  pageSize: number;
}

interface Denied {
  verb: string;
  resource: string;
  namespace: string | null;
  message: string;
}

export async function readCluster(kubeConfig: KubeConfig, options: ReadOptions): Promise<ClusterFacts> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const server = kubeConfig.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  const denied: Denied[] = [];
  // Each read records a refusal and goes on, so one run names every missing permission.
  const attempt = async <T>(verb: string, resource: string, namespace: string | null, read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      if (err instanceof ApiException && err.code === 403) {
        denied.push({ verb, resource, namespace, message: statusMessage(err) });
        return undefined;
      }
      throw describeFailure(err, server);
    }
  };
  const [nodes, events, tunnel] = await Promise.all([
    attempt(options.node ? 'get' : 'list', 'nodes', null, () => readNodes(core, options)),
    attempt('list', 'events', 'default', () => readEvents(core, options)),
    readTunnel(core, apps, attempt),
  ]);
  if (denied.length > 0) throw accessDenied(denied);
  const names = new Set((nodes ?? []).map((n) => n.name));
  return {
    nodes: nodes ?? [],
    events: (events ?? []).filter((e) => names.has(e.node)).sort((a, b) => (b.at ?? 0) - (a.at ?? 0)),
    konnectivity: tunnel,
  };
}

async function readNodes(core: CoreV1Api, options: ReadOptions): Promise<NodeView[]> {
  if (options.node !== undefined) {
    try {
      return [nodeView(await core.readNode({ name: options.node }))];
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) throw new UsageError(`--node: there is no node "${options.node}"; kubectl get nodes lists them`);
      throw err;
    }
  }
  const views: NodeView[] = [];
  await eachPage((page) => core.listNode({ ...(options.selector ? { labelSelector: options.selector } : {}), ...page }), options.pageSize, (node) => views.push(nodeView(node)));
  return views;
}

async function readEvents(core: CoreV1Api, options: ReadOptions): Promise<EventView[]> {
  const fieldSelector = `involvedObject.kind=Node${options.node !== undefined ? `,involvedObject.name=${options.node}` : ''}`;
  const views: EventView[] = [];
  await eachPage((page) => core.listNamespacedEvent({ namespace: 'default', fieldSelector, ...page }), options.pageSize, (event) => {
    const view = eventView(event);
    if (view) views.push(view);
  });
  return views;
}

type Attempt = <T>(verb: string, resource: string, namespace: string | null, read: () => Promise<T>) => Promise<T | undefined>;

/** The konnectivity-agent Deployment and its pods; no Deployment is direct mode. */
async function readTunnel(core: CoreV1Api, apps: AppsV1Api, attempt: Attempt): Promise<{ deployment?: DeploymentView; pods: PodView[] }> {
  const { namespace, name } = konnectivityDeployment;
  const deployment = await attempt('get', 'deployments.apps', namespace, async () => {
    try {
      return await apps.readNamespacedDeployment({ name, namespace });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return null;
      throw err;
    }
  });
  if (!deployment) return { pods: [] };
  const labels = deployment.spec?.selector?.matchLabels ?? {};
  const labelSelector = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = labelSelector ? await attempt('list', 'pods', namespace, () => core.listNamespacedPod({ namespace, labelSelector })) : undefined;
  return { deployment: deploymentView(deployment), pods: (pods?.items ?? []).map(podView) };
}

interface Page<T> {
  items: T[];
  metadata?: { _continue?: string };
}

async function eachPage<T>(list: (page: { limit: number; _continue?: string }) => Promise<Page<T>>, limit: number, each: (item: T) => void): Promise<void> {
  let token: string | undefined;
  do {
    const page = await list(token === undefined ? { limit } : { limit, _continue: token });
    for (const item of page.items) each(item);
    token = page.metadata?._continue || undefined;
  } while (token !== undefined);
}

function statusMessage(err: ApiException<unknown>): string {
  const body: unknown = typeof err.body === 'string' ? parseJson(err.body) : err.body;
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${err.code}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function where(namespace: string | null): string {
  return namespace === null ? 'cluster-wide' : `in namespace ${namespace}`;
}

function accessDenied(denied: Denied[]): AccessError {
  const lines = denied.map((d) => `  - missing RBAC verb "${d.verb}" on ${d.resource} ${where(d.namespace)}: ${d.message}`);
  const needs = requiredAccess.map((a) => `${a.verbs} on ${a.resource} ${where(a.namespace)}`).join('; ');
  return new AccessError(`access denied:\n${lines.join('\n')}\nThe doctor needs only: ${needs}. Grant them, e.g.:\n  ${grantCommand}`);
}

function describeFailure(err: unknown, server: string): Error {
  if (err instanceof UsageError) return err;
  if (err instanceof ApiException) {
    if (err.code === 401) return new AccessError(`the API server at ${server} refused the credentials (401 Unauthorized): log in again or fix the kubeconfig's user`);
    return new AccessError(`the API server at ${server} answered HTTP ${err.code}: ${statusMessage(err)}`);
  }
  return new AccessError(`cannot reach the API server at ${server}: ${(err as Error).message ?? String(err)}`);
}
