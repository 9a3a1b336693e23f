/**
 * Deadlines that never beat an answer which arrived in time.
 *
 * Node runs expired timers before it polls for I/O. After the event loop stalled (a CPU-starved
 * node, a long GC pause, a burst of synchronous work), a plain timer therefore fires ahead of a
 * reply, a refused connection or a child's exit that was already waiting in the kernel, and a
 * healthy kubelet or DNS server is reported as timing out, or an ARM answer is lost. These
 * deadlines, once expired, let the loop go round a few more times before they act, so that what
 * was waiting is read (poll phase), its streams end and its handles close (close phase): a plugin
 * that exited during a stall is seen exiting, its stderr at EOF and its stdout at EOF on separate
 * turns. Each turn costs microseconds on an idle loop; the deadline then applies only to what
 * really did not come.
 */

/** Turns of the loop an expired deadline waits; a plugin that exited during a stall needed three (measured under vitest). */
const settleTurns = 4;

export interface Deadline {
  clear(): void;
}

/**
 * Runs `onExpire` once `ms` have passed and the I/O ready by then has been handled. Like
 * setTimeout, the deadline keeps the process alive (a call in flight is held open by it, as
 * `--once` needs) unless `keepAlive` is false.
 */
export function setDeadline(onExpire: () => void, ms: number, { keepAlive = true }: { keepAlive?: boolean } = {}): Deadline {
  let immediate: NodeJS.Immediate | undefined;
  // An immediate queued from the check phase runs in the next iteration, after this one's poll and
  // close phases. Not unref'd: a loop with only unref'd immediates blocks in poll and runs them late.
  const turn = (left: number) => {
    immediate = setImmediate(left === 1 ? onExpire : () => turn(left - 1));
  };
  const timer = setTimeout(() => turn(settleTurns), ms);
  if (!keepAlive) timer.unref();
  return {
    clear() {
      clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}

/**
 * AbortSignal.timeout with the deadline's ordering: aborts with a TimeoutError DOMException and,
 * as AbortSignal.timeout does, does not keep the process alive by itself.
 */
export function deadlineSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  setDeadline(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms, { keepAlive: false });
  return controller.signal;
}
