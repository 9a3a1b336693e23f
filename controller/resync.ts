/**
 * The periodic resync of a per-object controller: every key is handed to `enqueue` at least
 * once per `periodMs`, a slice each tick rather than all at once, so a large fleet costs a
 * steady trickle of reconciles instead of a burst (controller-runtime's SyncPeriod, spread).
 * It walks the store's live key iterator and starts over when it ends or when `generation()`
 * changes (a relist replaced the store).
 */
export interface ResyncSource {
  keys(): IterableIterator<string>;
  readonly size: number;
  /** Changes whenever the store is replaced. */
  generation(): number;
}

export function startResync(
  source: ResyncSource,
  periodMs: number,
  enqueue: (key: string) => void,
  timers: { setInterval: typeof setInterval; clearInterval: typeof clearInterval } = globalThis,
): () => void {
  const tickMs = Math.min(1000, periodMs);
  let cursor = source.keys();
  let generation = source.generation();
  // Fractions carry over, so a fleet smaller than the ticks in a period is spread too.
  let credit = 0;
  const timer = timers.setInterval(() => {
    if (source.generation() !== generation) {
      generation = source.generation();
      cursor = source.keys();
    }
    credit += (source.size * tickMs) / periodMs;
    let budget = Math.floor(credit + 1e-9);
    credit -= budget;
    let restarted = false;
    while (budget-- > 0) {
      let next = cursor.next();
      if (next.done) {
        // One lap per tick at most: a store smaller than the slice is not walked twice.
        if (restarted) return;
        restarted = true;
        cursor = source.keys();
        next = cursor.next();
        if (next.done) return;
      }
      enqueue(next.value);
    }
  }, tickMs);
  (timer as { unref?: () => void }).unref?.();
  return () => timers.clearInterval(timer);
}
