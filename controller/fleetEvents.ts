import { CoreV1Api, Watch, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Informer } from './informer.js';
import { timelineEntry, type TimelineEntry } from './fleetView.js';

/**
 * The controller's own remediation Events about Nodes (written by this replica or any before
 * it), for the fleet page's timeline: one small watch, kept as timeline entries only. Events
 * live an hour on the API server, so the cache is bounded by what the fleet did in an hour.
 */
export class FleetEvents {
  private readonly informer: Informer<CoreV1Event, TimelineEntry>;

  constructor(kubeConfig: KubeConfig, source: string, log: Logger) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const namespace = 'default';
    const fieldSelector = `involvedObject.kind=Node,source=${source}`;
    const name = `events ${namespace} source=${source} (fleet page)`;
    const watch = new Watch(kubeConfig);
    // As the loop's: client-node aborts a watch silent for 30 s, and bookmarks come about once a minute.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 90_000;
    this.informer = new Informer<CoreV1Event, TimelineEntry>({
      name,
      path: `/api/v1/namespaces/${namespace}/events`,
      watch,
      list: (page) => core.listNamespacedEvent({ namespace, fieldSelector, limit: page.limit, _continue: page.continue }),
      watchParams: { fieldSelector },
      key: (e) => (e.metadata?.name ? `${e.metadata.namespace ?? ''}/${e.metadata.name}` : undefined),
      transform: (e) => ({ ...timelineEntry(e), message: (e.message ?? '').slice(0, 300) }),
      resourceVersion: (e) => e.metadata?.resourceVersion,
      onError: (err, during) => log.warn({ err: (err as Error).message, informer: name, during }, 'fleet page event watch failed; retrying with backoff'),
    });
  }

  /** Starts the watch without waiting for its first list: the page shows what has arrived. */
  start(): void {
    void this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  entries(): TimelineEntry[] {
    return this.informer.list();
  }
}
