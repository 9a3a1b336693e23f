import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
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

/**
 * Writes Node events like the kubelet's event correlator does: a repeat within the window
 * patches the existing event's count instead of creating another, a token bucket caps the
 * rate so a flapping probe cannot flood the API server, and a bounded queue holds events
 * while the API server is unreachable. What is dropped is counted and said in the next event.
 */
export class EventRecorder {
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Pending[] = [];
  private readonly written = new Map<string, Written>();
  private suppressed = 0;
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

  get dropped(): number {
    return this.suppressed;
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
      this.queue.shift();
      this.suppressed += 1;
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
          this.suppressed += 1;
          continue;
        }
        this.tokens -= 1;
        await this.write(next);
        this.queue.shift();
      }
      return true;
    } catch (err) {
      this.log.warn({ err }, 'writing a node event failed; will retry');
      return false;
    } finally {
      this.draining = false;
    }
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((now - this.refilledAt) / 60_000) * this.options.perMinute);
    this.refilledAt = now;
  }

  private async write(pending: Pending): Promise<void> {
    const key = `${pending.type}/${pending.reason}`;
    const note = this.suppressed > 0 ? ` (${this.suppressed} earlier events suppressed by the rate limit)` : '';
    const message = pending.message + note;
    const previous = this.written.get(key);
    if (previous && pending.at - previous.lastAt < this.options.dedupWindowMs) {
      const count = previous.count + 1;
      const patch: Partial<CoreV1Event> = { count, message, lastTimestamp: new Date(pending.at).toISOString() as unknown as Date };
      try {
        await this.api.patchEvent('default', previous.name, patch);
        this.written.set(key, { ...previous, count, lastAt: pending.at });
        this.suppressed = 0;
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
    this.suppressed = 0;
    this.written.delete(key);
    this.written.set(key, { name: event.metadata?.name as string, count: 1, lastAt: pending.at });
    // Reasons are a small closed set, but bound the map anyway (oldest first out).
    if (this.written.size > 256) this.written.delete(this.written.keys().next().value as string);
  }
}
