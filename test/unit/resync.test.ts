import { afterEach, describe, expect, it, vi } from 'vitest';
import { startResync } from '../../controller/resync.js';

afterEach(() => {
  vi.useRealTimers();
});

function store(names: string[]) {
  const map = new Map(names.map((n) => [n, true]));
  let generation = 0;
  return {
    map,
    source: { keys: () => map.keys(), get size() { return map.size; }, generation: () => generation },
    replace(next: string[]) {
      map.clear();
      for (const n of next) map.set(n, true);
      generation += 1;
    },
  };
}

describe('the periodic resync', () => {
  it('visits every node within its period, a slice each second rather than all at once', () => {
    vi.useFakeTimers();
    const names = Array.from({ length: 100 }, (_, i) => `node-${i}`);
    const s = store(names);
    const seen: string[] = [];
    const stop = startResync(s.source, 10_000, (k) => seen.push(k));
    vi.advanceTimersByTime(1000);
    expect(seen).toHaveLength(10);
    vi.advanceTimersByTime(9000);
    expect(new Set(seen)).toEqual(new Set(names));
    expect(seen).toHaveLength(100);
    stop();
    vi.advanceTimersByTime(10_000);
    expect(seen).toHaveLength(100);
  });

  it('picks up nodes added meanwhile and walks a replaced store (after a relist)', () => {
    vi.useFakeTimers();
    const s = store(['a', 'b', 'c', 'd']);
    const seen: string[] = [];
    startResync(s.source, 2000, (k) => seen.push(k));
    vi.advanceTimersByTime(1000);
    s.replace(['x', 'y', 'z', 'w']);
    vi.advanceTimersByTime(2000);
    expect(seen.slice(2)).toEqual(['x', 'y', 'z', 'w']);
  });

  it('spreads a fleet smaller than the ticks of a period: 3 nodes over 10 s is one every few seconds, not one a second', () => {
    vi.useFakeTimers();
    const s = store(['a', 'b', 'c']);
    const seen: string[] = [];
    startResync(s.source, 10_000, (k) => seen.push(k));
    vi.advanceTimersByTime(3000);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(7000);
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('never hands out a node twice in one tick when the fleet is smaller than a slice', () => {
    vi.useFakeTimers();
    const s = store(['only']);
    const seen: string[] = [];
    startResync(s.source, 500, (k) => seen.push(k));
    vi.advanceTimersByTime(500);
    expect(seen).toEqual(['only']);
  });
});
