import type { V1NodeCondition } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import type { ConditionEngine, ConditionType, NodeCondition, Observation, ProblemEvent } from '../conditions/conditionEngine.js';
import { ownedConditionTypes } from '../../common/contract.js';
import type { AgentKubeApi } from '../kube/agentKubeApi.js';
import { KubeApiError } from '../../common/kube/kubeClient.js';
import { Backoff } from './backoff.js';
import type { EventRecorder } from './eventRecorder.js';

export interface PublisherOptions {
  nodeName: string;
  heartbeatMs: number;
  /** Share of the heartbeat period by which each node's beat is spread. */
  heartbeatJitter: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export class NodeNotFoundError extends Error {
  override name = 'NodeNotFoundError';
}

/**
 * The exporter: writes the engine's conditions into nodes/<name>/status and its events onto
 * the Node. At steady state it writes once per heartbeat; a change writes at once. Only
 * the agent's own condition types are ever written or removed.
 */
export class ConditionPublisher {
  private dirty = true;
  private writing = false;
  private synced = false;
  private stopped = false;
  /** The next write: at once after a change, or a backoff retry after a failure. */
  private timer: NodeJS.Timeout | undefined;
  /** A failed write waits out its backoff; changes and heartbeats meanwhile ride on that retry. */
  private retrying = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  /** Owned types on the Node that no enabled probe sets any more: removed at the next write. */
  private stale: ConditionType[] = [];

  constructor(
    private readonly api: AgentKubeApi,
    private readonly engine: ConditionEngine,
    private readonly events: EventRecorder,
    private readonly options: PublisherOptions,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.backoff = new Backoff(options.backoffBaseMs, options.backoffMaxMs, random);
  }

  /** Published at least once since start: part of /readyz. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Reads the Node and adopts the agent's conditions already on it, so a restart or rolling
   * update reports no spurious transition. Fails only when the Node does not exist.
   */
  async adopt(): Promise<void> {
    const { nodeName } = this.options;
    for (;;) {
      try {
        const node = await this.api.getNode(nodeName);
        this.events.setNodeUid(node.metadata?.uid);
        const enabled = new Set(this.engine.types());
        for (const existing of node.status?.conditions ?? []) {
          const type = existing.type;
          if (!enabled.has(type)) {
            // A probe's type is only ever ours. A monitor's keeps NPD's name (KernelDeadlock, ...)
            // and may be NPD's own, still running beside us: left alone.
            if (ownedConditionTypes.includes(type as (typeof ownedConditionTypes)[number])) this.stale.push(type);
            continue;
          }
          const adopted = fromApi(existing);
          const heartbeat = Date.parse(String(existing.lastHeartbeatTime ?? ''));
          if (adopted) this.engine.adopt(adopted, Number.isFinite(heartbeat) ? heartbeat : undefined);
        }
        this.log.info({ node: nodeName, adopted: [...enabled], removing: this.stale }, 'adopted node conditions');
        this.backoff.reset();
        return;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) {
          throw new NodeNotFoundError(`node "${nodeName}" does not exist: NODE_NAME must name this pod's node (downward API fieldRef spec.nodeName)`);
        }
        if (this.stopped) return;
        const delay = this.backoff.next(err instanceof KubeApiError ? err.retryAfterSeconds : undefined);
        this.log.warn({ err, retryInMs: delay }, 'cannot read own node yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  start(): void {
    this.scheduleHeartbeat(true);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.heartbeatTimer);
  }

  onObservation(observation: Observation): void {
    for (const event of observation.events) this.events.record(event.severity, event.reason, event.message);
    if (observation.changed) this.dirty = true;
    if (observation.changed || observation.events.length > 0) this.kick();
  }

  /** A monitor's one-off problems: Events, no condition. */
  onEvents(events: readonly ProblemEvent[]): void {
    for (const event of events) this.events.record(event.severity, event.reason, event.message);
    if (events.length > 0) this.kick();
  }

  /**
   * A write as soon as possible (after the current one), with all owned conditions; while a
   * failed write backs off, nothing sooner: the retry writes whatever is current by then.
   */
  private kick(): void {
    if (this.stopped || this.retrying || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 0);
  }

  private retryIn(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.retrying = true;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.retrying = false;
      void this.flush();
    }, delayMs);
  }

  /**
   * The heartbeat's phase comes from the node name, so the fleet spreads over the whole
   * period instead of beating in the same second (NPD #661), plus a random share per beat.
   */
  private scheduleHeartbeat(first: boolean): void {
    const { heartbeatMs, heartbeatJitter, nodeName } = this.options;
    const phase = first ? (hash(nodeName) % 1000) / 1000 : 1;
    const jitter = (this.random() * 2 - 1) * heartbeatJitter;
    const delay = Math.max(1000, Math.round(heartbeatMs * phase * (1 + jitter)));
    this.heartbeatTimer = setTimeout(() => {
      this.dirty = true;
      this.kick();
      this.scheduleHeartbeat(false);
    }, delay);
  }

  private async flush(): Promise<void> {
    if (this.writing || this.stopped) return;
    this.writing = true;
    try {
      if (this.dirty) {
        // Whatever is current now is written: superseded samples are never queued.
        this.dirty = false;
        const now = new Date().toISOString();
        const conditions = this.engine.list().map((c) => toApi(c, now));
        try {
          await this.api.patchNodeConditions(this.options.nodeName, conditions, this.stale);
        } catch (err) {
          this.dirty = true;
          throw err;
        }
        this.stale = [];
        this.synced = true;
      }
      if (!(await this.events.drain())) throw new Error('event write failed');
      this.backoff.reset();
    } catch (err) {
      const retryAfter = err instanceof KubeApiError ? err.retryAfterSeconds : undefined;
      const delay = this.backoff.next(retryAfter);
      this.log.warn({ err: (err as Error).message, retryInMs: delay, failures: this.backoff.failures }, 'publishing to the API server failed; backing off');
      this.retryIn(delay);
    } finally {
      this.writing = false;
    }
    // What changed or was recorded during the write goes out next (unless backing off).
    if (this.dirty || this.events.queued > 0) this.kick();
  }
}

function toApi(c: NodeCondition, heartbeat: string): V1NodeCondition {
  return {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime: new Date(c.lastTransitionTime).toISOString() as unknown as Date,
    lastHeartbeatTime: heartbeat as unknown as Date,
  };
}

/** A condition from the API, validated: anything malformed is not adopted (it gets rewritten). */
function fromApi(c: V1NodeCondition): NodeCondition | undefined {
  const status = c.status;
  if (status !== 'True' && status !== 'False' && status !== 'Unknown') return undefined;
  const transition = Date.parse(String(c.lastTransitionTime ?? ''));
  return {
    type: c.type,
    status,
    reason: typeof c.reason === 'string' && c.reason ? c.reason : 'Adopted',
    message: typeof c.message === 'string' ? c.message : '',
    lastTransitionTime: Number.isFinite(transition) ? transition : Date.now(),
  };
}

/** FNV-1a: a stable, well-spread number per node name. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
