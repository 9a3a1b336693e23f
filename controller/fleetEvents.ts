import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../common/log.js';
import type { KubeClient } from '../common/kube/kubeClient.js';
import { Informer, eventSource } from './informer.js';
import { timelineEntry, type TimelineEntry } from './fleetView.js';

/**
 * The controller's own remediation Events about Nodes (written by this replica or any before
 * it), for the fleet page's timeline: one small watch, kept as timeline entries only. Events
 * live an hour on the API server, so the cache is bounded by what the fleet did in an hour.
 */
export class FleetEvents {
  private readonly informer: Informer<CoreV1Event, TimelineEntry>;

  constructor(client: KubeClient, source: string, log: Logger) {
    const namespace = 'default';
    const fieldSelector = `involvedObject.kind=Node,source=${source}`;
    const name = `events ${namespace} source=${source} (fleet page)`;
    const path = `/api/v1/namespaces/${namespace}/events`;
    this.informer = new Informer<CoreV1Event, TimelineEntry>({
      name,
      ...eventSource(client, path, fieldSelector),
      transform: (e) => ({ ...timelineEntry(e), message: (e.message ?? '').slice(0, 300) }),
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
