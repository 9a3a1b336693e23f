import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import { nodeEvent } from '../../common/kube/nodeEvent.js';
import type { AgentKubeApi } from '../kube/agentKubeApi.js';

export interface RecorderOptions {
  nodeName: string;
  nodeUid?: string;
  component: string;
  burst: number;
  perMinute: number;
  /** A repeat of the same type+reason within this window bumps the count of the event already written. */
  dedupWindowMs: number;
  /** Events waiting while the API server is away; the oldest are dropped past this. */
  maxQueued: number;
}

interface Pending {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  at: number;
}

interface Written {
  name: string;
  count: number;
  lastAt: number;
}

/** Events dropped and not yet said in a written event, by why. */
interface Unsaid {
  rateLimited: number;
  overflowed: number;
}

/**
 * Writes Node events like the kubelet's event correlator does: a repeat within the window
 * patches the existing event's count instead of creating another, a token bucket caps the
 * rate so a flapping probe cannot flood the API server, and a bounded queue holds events
 * while the API server is unreachable. Every drop is counted and said in the next event.
 */
export class EventRecorder {
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Pending[] = [];
  private readonly written = new Map<string, Written>();
  /** The event being written: never the one dropped when the queue overflows meanwhile. */
  private inFlight: Pending | undefined;
  private unsaid: Unsaid = { rateLimited: 0, overflowed: 0 };
  private droppedTotal = 0;
  private draining = false;

  constructor(
    private readonly api: AgentKubeApi,
    private readonly options: RecorderOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = options.burst;
    this.refilledAt = now();
  }

  /** Events dropped since start (over the rate, or the queue full while the API server was away). */
  get dropped(): number {
    return this.droppedTotal;
  }

  get queued(): number {
    return this.queue.length;
  }

  setNodeUid(uid: string | undefined): void {
    this.options.nodeUid = uid;
  }

  record(type: Pending['type'], reason: string, message: string): void {
    this.queue.push({ type, reason, message, at: this.now() });
    if (this.queue.length > this.options.maxQueued) {
      // The oldest waiting event goes, never the one a write is carrying right now.
      const oldest = this.queue.findIndex((pending) => pending !== this.inFlight);
      this.queue.splice(oldest, 1);
      this.drop('overflowed');
    }
  }

  /** Writes what the rate allows; returns false when the API server failed (caller backs off). */
  async drain(): Promise<boolean> {
    if (this.draining) return true;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        this.refill();
        const next = this.queue[0] as Pending;
        if (this.tokens < 1) {
          // Over the rate: the oldest waiting event is dropped rather than delayed forever.
          this.queue.shift();
          this.drop('rateLimited');
          continue;
        }
        this.inFlight = next;
        try {
          await this.write(next);
        } finally {
          this.inFlight = undefined;
        }
        // A token is spent only on a write that landed: an outage must not eat the burst.
        this.tokens -= 1;
        // By identity: record() may have changed the queue while the write was under way.
        const index = this.queue.indexOf(next);
        if (index >= 0) this.queue.splice(index, 1);
      }
      return true;
    } catch (err) {
      this.log.warn({ err }, 'writing a node event failed; will retry');
      return false;
    } finally {
      this.draining = false;
    }
  }

  private drop(why: keyof Unsaid): void {
    this.unsaid[why] += 1;
    this.droppedTotal += 1;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((now - this.refilledAt) / 60_000) * this.options.perMinute);
    this.refilledAt = now;
  }

  private async write(pending: Pending): Promise<void> {
    const key = `${pending.type}/${pending.reason}`;
    // What this write says; drops while it is under way are said by the next one.
    const said = { ...this.unsaid };
    const message = pending.message + dropNote(said);
    const previous = this.written.get(key);
    if (previous && pending.at - previous.lastAt < this.options.dedupWindowMs) {
      const count = previous.count + 1;
      const patch: Partial<CoreV1Event> = { count, message, lastTimestamp: new Date(pending.at).toISOString() as unknown as Date };
      try {
        await this.api.patchEvent('default', previous.name, patch);
        this.written.set(key, { ...previous, count, lastAt: pending.at });
        this.forget(said);
        return;
      } catch (err) {
        // The event expired (events live about an hour): write a fresh one below.
        if ((err as { status?: number }).status !== 404) throw err;
      }
    }
    const event = nodeEvent({
      node: { name: this.options.nodeName, uid: this.options.nodeUid },
      type: pending.type,
      reason: pending.reason,
      message,
      component: this.options.component,
      host: this.options.nodeName,
      now: new Date(pending.at),
    });
    await this.api.createEvent('default', event);
    this.forget(said);
    this.written.delete(key);
    this.written.set(key, { name: event.metadata?.name as string, count: 1, lastAt: pending.at });
    // Reasons are a small closed set, but bound the map anyway (oldest first out).
    if (this.written.size > 256) this.written.delete(this.written.keys().next().value as string);
  }

  private forget(said: Unsaid): void {
    this.unsaid = { rateLimited: this.unsaid.rateLimited - said.rateLimited, overflowed: this.unsaid.overflowed - said.overflowed };
  }
}

function dropNote(said: Unsaid): string {
  const parts = [
    said.rateLimited > 0 ? `${said.rateLimited} earlier events suppressed by the rate limit` : '',
    said.overflowed > 0 ? `${said.overflowed} dropped from a full queue while the API server was slow or away` : '',
  ].filter((part) => part !== '');
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
