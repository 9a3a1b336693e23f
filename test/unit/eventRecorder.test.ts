import { describe, expect, it } from 'vitest';
import { jsonLogger } from '../../common/log.js';
import type { CoreV1Event } from '@kubernetes/client-node';
import type { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import { KubeApiError } from '../../common/kube/kubeClient.js';
import { EventRecorder } from '../../agent/publish/eventRecorder.js';
import { Backoff } from '../../agent/publish/backoff.js';

/** Records the writes the recorder makes; can be told to fail like an absent API server. */
class FakeEventsApi {
  created: CoreV1Event[] = [];
  patched: Array<{ name: string; patch: Partial<CoreV1Event> }> = [];
  down = false;
  /** While set, a create waits for it: a slow API server, with record() running meanwhile. */
  gate: Promise<void> | undefined;
  async createEvent(_ns: string, event: CoreV1Event) {
    await this.gate;
    if (this.down) throw new KubeApiError('connect ECONNREFUSED', 0, 'ECONNREFUSED');
    this.created.push(event);
    return event;
  }
  async patchEvent(_ns: string, name: string, patch: Partial<CoreV1Event>) {
    if (this.down) throw new KubeApiError('connect ECONNREFUSED', 0, 'ECONNREFUSED');
    this.patched.push({ name, patch });
    return {} as CoreV1Event;
  }
}

function recorder(api: FakeEventsApi, clock: { t: number }, overrides = {}) {
  return new EventRecorder(
    api as unknown as AgentKubeApi,
    { nodeName: 'node-a', nodeUid: 'uid-1', component: 'nodepulse-agent', burst: 3, perMinute: 6, dedupWindowMs: 600_000, maxQueued: 5, ...overrides },
    jsonLogger({ level: 'silent' }),
    () => clock.t,
  );
}

describe('node events', () => {
  it('are written on the Node with reason, figures and the agent as source', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, { t: 1_000_000 });
    r.record('Warning', 'ClusterDNSTimeout', 'ClusterDNS timed out after 2000 ms');
    expect(await r.drain()).toBe(true);
    expect(api.created[0]).toMatchObject({
      involvedObject: { kind: 'Node', name: 'node-a', uid: 'uid-1' },
      type: 'Warning',
      reason: 'ClusterDNSTimeout',
      message: 'ClusterDNS timed out after 2000 ms',
      source: { component: 'nodepulse-agent', host: 'node-a' },
      reportingComponent: 'nodepulse-agent',
      count: 1,
    });
  });

  it('a repeat of the same problem bumps the count of the existing event instead of creating another', async () => {
    const api = new FakeEventsApi();
    const clock = { t: 0 };
    const r = recorder(api, clock);
    r.record('Warning', 'ClusterDNSTimeout', 'first');
    await r.drain();
    clock.t = 60_000;
    r.record('Warning', 'ClusterDNSTimeout', 'second');
    await r.drain();
    expect(api.created).toHaveLength(1);
    expect(api.patched).toEqual([{ name: api.created[0]?.metadata?.name, patch: expect.objectContaining({ count: 2, message: 'second' }) }]);
  });

  it('a flapping probe cannot exceed the burst and rate; what was dropped is said in the next event', async () => {
    const api = new FakeEventsApi();
    const clock = { t: 0 };
    const r = recorder(api, clock);
    for (let i = 0; i < 5; i++) r.record('Warning', `Flap${i}`, `flap ${i}`);
    await r.drain();
    expect(api.created).toHaveLength(3);
    expect(r.dropped).toBe(2);
    clock.t = 10_000; // one token back at 6 per minute
    r.record('Normal', 'Recovered', 'back');
    await r.drain();
    expect(api.created).toHaveLength(4);
    expect(api.created[3]?.message).toBe('back (2 earlier events suppressed by the rate limit)');
  });

  it('keeps a bounded queue while the API server is away and writes it when it is back', async () => {
    const api = new FakeEventsApi();
    const clock = { t: 0 };
    const r = recorder(api, clock, { burst: 10 });
    api.down = true;
    for (let i = 0; i < 8; i++) r.record('Warning', `Problem${i}`, `p${i}`);
    expect(await r.drain()).toBe(false);
    expect(r.queued).toBe(5);
    api.down = false;
    expect(await r.drain()).toBe(true);
    expect(api.created.map((e) => e.reason)).toEqual(['Problem3', 'Problem4', 'Problem5', 'Problem6', 'Problem7']);
  });
});

describe('node events during a slow or absent API server', () => {
  it('a queue overflow during a write drops a waiting event, never the one being written, and says so in the next event', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, { t: 0 }, { maxQueued: 2 });
    let open = () => undefined as void;
    api.gate = new Promise<void>((resolve) => (open = resolve));
    r.record('Warning', 'First', 'first');
    const draining = r.drain();
    // While "First" is on the wire, three more arrive; the queue holds two.
    r.record('Warning', 'Second', 'second');
    r.record('Warning', 'Third', 'third');
    r.record('Warning', 'Fourth', 'fourth');
    api.gate = undefined;
    open();
    expect(await draining).toBe(true);
    // The queue's two places: "First" (in flight) and the newest; "Second" and "Third" gave way.
    expect(api.created.map((e) => e.reason)).toEqual(['First', 'Fourth']);
    expect(r.dropped).toBe(2);
    expect(api.created[1]?.message).toBe('fourth (2 dropped from a full queue while the API server was slow or away)');
  });

  it('failed writes spend no rate-limit tokens: after an outage the waiting event still goes out', async () => {
    const api = new FakeEventsApi();
    const r = recorder(api, { t: 0 }, { burst: 2 });
    api.down = true;
    r.record('Warning', 'ClusterDNSTimeout', 'during the outage');
    for (let i = 0; i < 5; i++) expect(await r.drain()).toBe(false);
    api.down = false;
    expect(await r.drain()).toBe(true);
    expect(api.created.map((e) => e.reason)).toEqual(['ClusterDNSTimeout']);
    expect(r.dropped).toBe(0);
  });

  it('counts every drop, over the rate and from a full queue, and names both in the next event', async () => {
    const api = new FakeEventsApi();
    const clock = { t: 0 };
    const r = recorder(api, clock, { burst: 1, maxQueued: 2 });
    r.record('Warning', 'P0', 'p0');
    await r.drain();
    // The token is spent: of three more, one is pushed out of the queue and two are over the rate.
    for (let i = 1; i <= 3; i++) r.record('Warning', `P${i}`, `p${i}`);
    await r.drain();
    expect(api.created.map((e) => e.reason)).toEqual(['P0']);
    expect(r.dropped).toBe(3);
    clock.t = 60_000;
    r.record('Normal', 'Recovered', 'back');
    await r.drain();
    expect(api.created[1]?.message).toBe(
      'back (2 earlier events suppressed by the rate limit, 1 dropped from a full queue while the API server was slow or away)',
    );
  });
});

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter, and honours Retry-After', () => {
    const b = new Backoff(500, 8000, () => 1);
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(b.next(30)).toBe(30_000);
    b.reset();
    expect(new Backoff(500, 8000, () => 0.5).next()).toBe(250);
  });
});
