/**
 * A per-object work queue in the shape of client-go's workqueue as controller-runtime uses it
 * (util/workqueue: Type, delaying_queue, default_rate_limiters):
 * - a key is in the queue at most once, however often it is added (dirty set);
 * - a key being processed is never handed out twice: added meanwhile, it is queued again when
 *   `done()` is called (processing set);
 * - `addAfter` delivers a key no earlier than asked (the earliest of several asks wins);
 * - `addRateLimited` backs a key off exponentially, per key, from `baseDelayMs` to
 *   `maxDelayMs` (client-go's ItemExponentialFailureRateLimiter: 5 ms to 1000 s), until
 *   `forget()` resets it after a success.
 */
export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  /** The earliest pending addAfter per key. */
  private readonly delayed = new Map<string, { at: number; timer: { cancel(): void } }>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shut = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => { cancel(): void };

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    this.now = options.now ?? Date.now;
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return { cancel: () => clearTimeout(t) };
      });
  }

  /** Keys waiting to be handed out (not counting delayed ones or those being processed). */
  get length(): number {
    return this.queue.length - this.head;
  }

  add(key: string): void {
    if (this.shut || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shut) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.timer.cancel();
    const timer = this.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, timer });
  }

  /** After a failure: the key again later, each consecutive failure doubling the wait. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** After a success: the key's backoff starts over. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The next key to process; undefined once the queue is shut down or `signal` aborts (no key is lost then). */
  get(signal?: AbortSignal): Promise<string | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.head < this.queue.length) {
      const key = this.queue[this.head++] as string;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shut) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter = (key: string | undefined) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(key);
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** The key is processed; if it was added meanwhile, it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Drops everything queued or delayed (e.g. on losing leadership); keys being processed finish. */
  clear(): void {
    this.queue.length = 0;
    this.head = 0;
    this.dirty.clear();
    for (const { timer } of this.delayed.values()) timer.cancel();
    this.delayed.clear();
    this.failures.clear();
  }

  shutDown(): void {
    this.shut = true;
    this.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
