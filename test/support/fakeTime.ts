/**
 * A clock that moves only when code under test sleeps on it, with timeouts that fire when it
 * passes them: waits and budgets become exact numbers, and no test waits for real.
 */
export interface FakeTime {
  now(): number;
  /** Moves the clock by `ms` (firing due timeouts), as a real sleep would, and rejects like one on abort. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** A signal that aborts once the clock has moved `ms` past now, like AbortSignal.timeout. */
  timeout(ms: number): AbortSignal;
  /** Every wait asked of sleep(), in order. */
  waits: number[];
}

export function fakeTime(start = Date.parse('2026-03-02T08:00:00Z')): FakeTime {
  let t = start;
  const timers: Array<{ at: number; controller: AbortController }> = [];
  const waits: number[] = [];
  const advance = (ms: number) => {
    t += ms;
    for (const timer of timers) {
      if (timer.at <= t && !timer.controller.signal.aborted) timer.controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }
  };
  return {
    waits,
    now: () => t,
    async sleep(ms, signal) {
      signal.throwIfAborted();
      waits.push(ms);
      advance(ms);
      await Promise.resolve();
      signal.throwIfAborted();
    },
    timeout(ms) {
      const controller = new AbortController();
      timers.push({ at: t + ms, controller });
      return controller.signal;
    },
  };
}
