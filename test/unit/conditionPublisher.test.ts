import type { CoreV1Event, V1NodeCondition } from '@kubernetes/client-node';
import { jsonLogger } from '../../common/log.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConditionEngine, type Observation } from '../../agent/conditions/conditionEngine.js';
import type { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import { KubeApiError } from '../../common/kube/kubeClient.js';
import { ConditionPublisher } from '../../agent/publish/conditionPublisher.js';
import { EventRecorder } from '../../agent/publish/eventRecorder.js';

const log = jsonLogger({ level: 'silent' });
const refused = () => new KubeApiError('connect ECONNREFUSED', 0, 'ECONNREFUSED');

/** An API server that can be down; records when each write arrived (on the fake clock). */
class FakeApi {
  down = false;
  patches: Array<{ at: number; conditions: V1NodeCondition[] }> = [];
  events: Array<{ at: number; reason: string }> = [];
  async patchNodeConditions(_node: string, conditions: V1NodeCondition[]) {
    this.patches.push({ at: Date.now(), conditions });
    if (this.down) throw refused();
    return {};
  }
  async createEvent(_ns: string, event: CoreV1Event) {
    this.events.push({ at: Date.now(), reason: event.reason ?? '' });
    if (this.down) throw refused();
    return event;
  }
  async patchEvent() {
    if (this.down) throw refused();
    return {} as CoreV1Event;
  }
}

function setup() {
  const api = new FakeApi();
  const engine = new ConditionEngine([{ type: 'DNSProblem', probe: 'dns', failureThreshold: 1, recoveryThreshold: 1 }], 0);
  const events = new EventRecorder(
    api as unknown as AgentKubeApi,
    { nodeName: 'node-a', component: 'nodepulse-agent', burst: 100, perMinute: 600, dedupWindowMs: 0, maxQueued: 100 },
    log,
  );
  // random() = 1: every backoff delay is its ceiling, 1 s, 2 s, 4 s, ...; heartbeats far away.
  const publisher = new ConditionPublisher(
    api as unknown as AgentKubeApi,
    engine,
    events,
    { nodeName: 'node-a', heartbeatMs: 3_600_000, heartbeatJitter: 0, backoffBaseMs: 1000, backoffMaxMs: 60_000 },
    log,
    () => 1,
  );
  return { api, engine, publisher };
}

/** A sample that flips DNSProblem (True on odd, False on even n), as a flapping probe does. */
function flip(engine: ConditionEngine, n: number): Observation {
  const healthy = n % 2 === 0;
  return engine.observe({
    probe: 'dns',
    at: Date.now(),
    durationMs: 1,
    healthy,
    reason: healthy ? 'DNSHealthy' : 'ClusterDNSTimeout',
    message: `sample ${n}`,
    figures: {},
  }) as Observation;
}

describe('condition publisher while the API server is away', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps its backoff when conditions change and events arrive: writes follow the backoff, not the probe cadence', async () => {
    const { api, engine, publisher } = setup();
    api.down = true;
    publisher.start();
    // A flapping probe every 100 ms for 7.5 s: each observation changes the condition and carries events.
    for (let n = 1; n <= 75; n++) {
      await vi.advanceTimersByTimeAsync(100);
      publisher.onObservation(flip(engine, n));
    }
    // First write at 0, then the retries at +1 s, +2 s, +4 s: 0, 1000, 3000, 7000.
    expect(api.patches.map((p) => p.at)).toEqual([0, 1000, 3000, 7000]);
    publisher.stop();
  });

  it('writes the latest state at the first retry after the server is back, superseded samples never queued', async () => {
    const { api, engine, publisher } = setup();
    api.down = true;
    publisher.start();
    await vi.advanceTimersByTimeAsync(10);
    for (let n = 1; n <= 3; n++) publisher.onObservation(flip(engine, n));
    api.down = false;
    await vi.advanceTimersByTimeAsync(989);
    expect(api.patches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(api.patches).toHaveLength(2);
    expect(api.patches[1]?.conditions[0]).toMatchObject({ type: 'DNSProblem', status: 'True', message: 'sample 3' });
    // The events of the outage go out with that write; the next change writes at once again.
    expect(api.events.map((e) => e.at)).toEqual([1000, 1000, 1000]);
    publisher.onObservation(flip(engine, 4));
    await vi.advanceTimersByTimeAsync(1);
    expect(api.patches.map((p) => p.at)).toEqual([0, 1000, 1000]);
    publisher.stop();
  });

  it('writes a change at once when it is not backing off', async () => {
    const { api, engine, publisher } = setup();
    publisher.start();
    await vi.advanceTimersByTimeAsync(50);
    publisher.onObservation(flip(engine, 1));
    await vi.advanceTimersByTimeAsync(1);
    expect(api.patches.map((p) => p.at)).toEqual([0, 50]);
    publisher.stop();
  });
});

