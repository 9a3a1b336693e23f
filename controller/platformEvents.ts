import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../common/log.js';
import type { ControllerConfig } from './config/controllerConfig.js';

/**
 * Which Events say "the platform is remediating this node", so that we defer to it.
 *
 * An Event carries no authenticated author: whoever may create Events in a namespace can write
 * any source.component there. So an Event counts only where the real ones live and only when
 * it is self-consistent. What the sources say about AKS's own:
 * - source.component `aks-auto-repair`, on the Node object (learn.microsoft.com/azure/aks/node-auto-repair,
 *   "Monitor node auto-repair using Kubernetes events"); the AKS blog lists them with
 *   `kubectl get events --field-selector=source=aks-auto-repair` (Azure/AKS, 2025-03-17
 *   "Enhancing Observability in AKS"), a query of `default` on a fresh `az aks get-credentials`.
 * - Namespace: an Event about a cluster-scoped object may live only in `default`, or with
 *   eventTime set also `kube-system`; any other namespace forces involvedObject.namespace to
 *   that namespace (kubernetes pkg/apis/core/validation/events.go, legacyValidateEvent).
 *   client-go's recorder writes them to `default` (tools/record/event.go, makeEvent), as AKS's
 *   upgrade events on nodes show (learn.microsoft.com/azure/aks/upgrade-aks-node-pools-rolling).
 * - reportingComponent / reportingInstance: no AKS source gives them. client-go's recorder
 *   copies source.component and source.host into them, so one that differs from the source is a
 *   contradiction; whether they are set at all is left to config (platform.requireReportingComponent,
 *   platform.reportingInstances).
 */
export type PlatformConfig = ControllerConfig['platform'];

/** A trusted remediation on `node` at `at` (epoch ms), a refusal and why, or not a platform event at all. */
export type PlatformVerdict = { node: string; at: number } | { rejected: string } | undefined;

/** One list+watch of platform events: a namespace and a source. */
export interface PlatformEventWatch {
  namespace: string;
  source: string;
  /** The watch path, e.g. /api/v1/namespaces/default/events. */
  path: string;
  fieldSelector: string;
}

/** What to watch: each trusted namespace times each remediator source, never all namespaces. */
export function platformEventWatches(config: PlatformConfig): PlatformEventWatch[] {
  return config.trustedNamespaces.flatMap((namespace) =>
    config.remediatorSources.map((source) => ({
      namespace,
      source,
      path: `/api/v1/namespaces/${namespace}/events`,
      fieldSelector: `involvedObject.kind=Node,source=${source}`,
    })),
  );
}

function epochMs(time: Date | string | undefined): number {
  return time ? new Date(time).getTime() : Number.NaN;
}

/**
 * The trust rules, pure. An event from a source not configured is none of our business
 * (undefined); one that claims a configured source but fails a rule is rejected with the reason.
 * The time is the event's latest (last occurrence, series, creation), capped at `now`.
 */
export function platformRemediation(event: CoreV1Event, config: PlatformConfig, now: number): PlatformVerdict {
  const source = event.source?.component ?? '';
  if (!config.remediatorSources.includes(source)) return undefined;
  const namespace = event.metadata?.namespace ?? '';
  const trusted: readonly string[] = config.trustedNamespaces;
  if (!trusted.includes(namespace)) {
    return { rejected: `it is in namespace "${namespace}"; events from ${source} are trusted only in ${config.trustedNamespaces.join(', ')} (platform.trustedNamespaces)` };
  }
  const object = event.involvedObject;
  if (object?.kind !== 'Node' || (object.apiVersion || 'v1') !== 'v1' || !object.name) {
    return { rejected: `it is about ${object?.apiVersion ?? ''}/${object?.kind ?? ''} "${object?.name ?? ''}", not a v1 Node` };
  }
  if (object.namespace) {
    return { rejected: `its involvedObject names namespace "${object.namespace}", which a Node (cluster-scoped) never has` };
  }
  const reporting = event.reportingComponent ?? '';
  if (reporting !== '' && reporting !== source) {
    return { rejected: `its reportingComponent "${reporting}" contradicts its source "${source}"` };
  }
  if (reporting === '' && config.requireReportingComponent) {
    return { rejected: 'it has no reportingComponent (platform.requireReportingComponent)' };
  }
  const instance = event.reportingInstance ?? '';
  if (config.reportingInstances.length > 0 && !config.reportingInstances.includes(instance)) {
    return { rejected: `its reportingInstance "${instance}" is not one of ${config.reportingInstances.join(', ')} (platform.reportingInstances)` };
  }
  const times = [event.lastTimestamp, event.eventTime, event.series?.lastObservedTime, event.firstTimestamp, event.metadata?.creationTimestamp]
    .map(epochMs)
    .filter(Number.isFinite);
  if (times.length === 0) return { rejected: 'it carries no timestamp' };
  const latest = Math.max(...times);
  const ahead = latest - now;
  if (ahead > config.maxClockSkewSeconds * 1000) {
    return {
      rejected: `it is dated ${new Date(latest).toISOString()}, ${Math.round(ahead / 1000)} s ahead of this controller's clock (platform.maxClockSkewSeconds: ${config.maxClockSkewSeconds})`,
    };
  }
  return { node: object.name, at: Math.min(latest, now) };
}

/** Rejections remembered, so each is logged once; older ones are forgotten first. */
const maxRemembered = 1024;

/**
 * platformRemediation() for the loop: returns the trusted remediation or undefined, and logs
 * why an event was refused once per event (an updated forgery does not log again).
 */
export class PlatformEventTrust {
  private readonly logged = new Set<string>();

  constructor(
    private readonly config: PlatformConfig,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly now: () => number = Date.now,
  ) {}

  remediation(event: CoreV1Event): { node: string; at: number } | undefined {
    const verdict = platformRemediation(event, this.config, this.now());
    if (!verdict || !('rejected' in verdict)) return verdict;
    const key = event.metadata?.uid ?? `${event.metadata?.namespace}/${event.metadata?.name}`;
    if (!this.logged.has(key)) {
      if (this.logged.size >= maxRemembered) this.logged.delete(this.logged.values().next().value as string);
      this.logged.add(key);
      this.log.warn(
        { event: `${event.metadata?.namespace}/${event.metadata?.name}`, source: event.source?.component, node: event.involvedObject?.name, why: verdict.rejected },
        `platform event not trusted, not deferring to it: ${verdict.rejected}`,
      );
    }
    return undefined;
  }
}
