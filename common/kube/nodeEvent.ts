import type { CoreV1Event } from '@kubernetes/client-node';

export interface NodeEventInput {
  node: { name: string; uid?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** source.component and reportingController, e.g. `nodepulse-agent` or `aks-auto-repair`. */
  component: string;
  /** source.host and reportingInstance. */
  host: string;
  now: Date;
  namespace?: string;
  /**
   * A name that says which occurrence this is (e.g. node + step start + reason), so that a
   * writer that cannot know whether its predecessor wrote it can write it again: the second
   * create is refused as AlreadyExists. Default: unique per call.
   */
  name?: string;
}

/** Events longer than this are cut; the API server rejects messages over 1 KiB anyway. */
const maxMessage = 1000;

/**
 * A core/v1 Event about a Node, the shape `kubectl describe node` and `kubectl get events`
 * show. Node events live in the `default` namespace, as the kubelet's do. Shared by the agent
 * and the controller so both report alike.
 */
export function nodeEvent(input: NodeEventInput): CoreV1Event {
  const namespace = input.namespace ?? 'default';
  const time = input.now.toISOString();
  const micro = time.replace(/Z$/, '000Z');
  const nanos = BigInt(input.now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: input.name ?? `${input.node.name}.${nanos.toString(16)}`, namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: input.node.name, uid: input.node.uid ?? input.node.name },
    type: input.type,
    reason: input.reason,
    message: input.message.length > maxMessage ? `${input.message.slice(0, maxMessage - 3)}...` : input.message,
    source: { component: input.component, host: input.host },
    reportingComponent: input.component,
    reportingInstance: input.host,
    firstTimestamp: time as unknown as Date,
    lastTimestamp: time as unknown as Date,
    eventTime: micro as unknown as Date,
    action: input.reason,
    count: 1,
  };
}
