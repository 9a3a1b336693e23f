import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../controller/workQueue.js';

/** A queue on a fake clock whose timers the test fires. */
function fakeQueue(options: { baseDelayMs?: number; maxDelayMs?: number } = {}) {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const queue = new WorkQueue({
    ...options,
    now: () => now,
    setTimer: (fn, ms) => {
      const timer = { at: now + ms, fn, cancelled: false };
      timers.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
  });
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.filter((x) => !x.cancelled && x.at <= now).sort((a, b) => a.at - b.at)) {
      t.cancelled = true;
      t.fn();
    }
  };
  const drain = async () => {
    const keys: string[] = [];
    while (queue.length > 0) {
      const key = (await queue.get()) as string;
      keys.push(key);
      queue.done(key);
    }
    return keys;
  };
  return { queue, advance, drain, pendingTimers: () => timers.filter((t) => !t.cancelled).map((t) => t.at) };
}

describe('the per-node work queue', () => {
  it('holds a node once however many updates arrive before it is processed', async () => {
    const { queue, drain } = fakeQueue();
    for (let i = 0; i < 5; i++) queue.add('node-a');
    queue.add('node-b');
    expect(await drain()).toEqual(['node-a', 'node-b']);
  });

  it('never hands out a node that is being processed; an update meanwhile processes it once more afterwards', async () => {
    const { queue } = fakeQueue();
    queue.add('node-a');
    const first = await queue.get();
    queue.add('node-a');
    queue.add('node-a');
    expect(queue.length).toBe(0);
    queue.done(first as string);
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe('node-a');
  });

  it('delivers a delayed node no earlier than asked, and the earliest of two asks wins', async () => {
    const { queue, advance, pendingTimers } = fakeQueue();
    queue.addAfter('node-a', 10_000);
    queue.addAfter('node-a', 3_000);
    queue.addAfter('node-a', 7_000);
    expect(pendingTimers()).toEqual([3_000]);
    advance(2_999);
    expect(queue.length).toBe(0);
    advance(1);
    expect(queue.length).toBe(1);
  });

  it('backs a failing node off exponentially, per node, until a success resets it', () => {
    const { queue } = fakeQueue({ baseDelayMs: 5, maxDelayMs: 1_000 });
    expect([1, 2, 3, 4].map(() => queue.addRateLimited('node-a'))).toEqual([5, 10, 20, 40]);
    expect(queue.addRateLimited('node-b')).toBe(5);
    for (let i = 0; i < 10; i++) queue.addRateLimited('node-a');
    expect(queue.addRateLimited('node-a')).toBe(1_000);
    queue.forget('node-a');
    expect(queue.addRateLimited('node-a')).toBe(5);
  });

  it('a waiting worker gets the next node at once, and stops waiting when its signal aborts without losing a node', async () => {
    const { queue } = fakeQueue();
    const waiting = queue.get();
    queue.add('node-a');
    expect(await waiting).toBe('node-a');
    queue.done('node-a');
    const leadership = new AbortController();
    const abandoned = queue.get(leadership.signal);
    leadership.abort();
    expect(await abandoned).toBeUndefined();
    queue.add('node-b');
    expect(await queue.get()).toBe('node-b');
  });

  it('clear() drops what is queued and delayed (a replica that stops leading)', async () => {
    const { queue, advance } = fakeQueue();
    queue.add('node-a');
    queue.addAfter('node-b', 1000);
    queue.clear();
    advance(2000);
    expect(queue.length).toBe(0);
    queue.add('node-a');
    expect(queue.length).toBe(1);
  });
});
