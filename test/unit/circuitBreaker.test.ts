import { describe, expect, it } from 'vitest';
import { evaluateBreaker } from '../../controller/circuitBreaker.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { summariseFleet, type FleetEntry } from '../../controller/fleet.js';
import { readNode } from '../../controller/nodeHealth.js';
import { makeNode } from '../support/nodeFixtures.js';

const defaults = controllerConfigSchema.parse({}).safety.circuitBreaker;

describe('the circuit breaker', () => {
  it.each([
    // nodes, unhealthy, open?
    [1, 1, false], // a pool of one node is repaired (repairSingleNode, on by default)
    [2, 1, false],
    [2, 2, true],
    [3, 1, false], // 20% of 3 is 0.6: the floor of 1 still lets one node be repaired
    [3, 2, true],
    [5, 1, false],
    [5, 2, true],
    [5, 3, true],
    [10, 2, false],
    [10, 3, true],
    [100, 20, false],
    [100, 21, true],
  ])('with %i nodes and %i unhealthy, open is %s', (nodes, unhealthy, open) => {
    expect(evaluateBreaker(nodes, unhealthy, defaults).open).toBe(open);
  });

  it('holds a lone unhealthy node when repairSingleNode is off: all of the pool down looks like a partition', () => {
    expect(evaluateBreaker(1, 1, { ...defaults, repairSingleNode: false }).open).toBe(true);
    expect(evaluateBreaker(2, 2, defaults).open).toBe(true);
  });

  it('computes the share in integers: 29% of 100 nodes allows 29, not 28', () => {
    expect(evaluateBreaker(100, 29, { ...defaults, maxUnhealthyPercent: 29 })).toMatchObject({ open: false, allowed: 29 });
    expect(evaluateBreaker(100, 30, { ...defaults, maxUnhealthyPercent: 29 }).open).toBe(true);
  });

  it('says how many are unhealthy and how many are allowed', () => {
    expect(evaluateBreaker(5, 3, defaults).why).toBe('3 of 5 nodes are unhealthy, more than the 1 allowed (20% of 5, at least 1)');
  });

  it('an absolute cap holds however large the fleet', () => {
    const capped = { ...defaults, maxUnhealthyCount: 5 };
    expect(evaluateBreaker(1000, 6, capped)).toMatchObject({ open: true, allowed: 5 });
  });
});

describe('the fleet summary', () => {
  const config = controllerConfigSchema.parse({});
  const T = Date.parse('2026-03-02T08:00:00Z');
  const entry = (name: string, ready: 'True' | 'False', now: number): FleetEntry => {
    const reading = readNode(makeNode({ name, ready, readySince: T - 3_600_000, heartbeatAt: now }), {
      now,
      memory: { ready: 'True', firstSeenAt: T - 86_400_000, sawReady: true },
    });
    if (!reading.ok) throw new Error(reading.error);
    return { facts: reading.facts, state: undefined };
  };
  const fleetAt = (now: number, unhealthy: number) =>
    ['a', 'b', 'c', 'd', 'e'].map((n, i) => entry(n, i < unhealthy ? 'False' : 'True', now));

  it('remembers when a storm ended, so the cooldown survives the breaker closing', () => {
    const storm = summariseFleet(fleetAt(T, 3), T, config, undefined, false);
    expect(storm).toMatchObject({ nodes: 5, unhealthy: 3, breakerOpen: true });
    const after = summariseFleet(fleetAt(T + 60_000, 0), T + 60_000, config, storm, false);
    expect(after).toMatchObject({ breakerOpen: false, stormEndedAt: T + 60_000 });
    const later = summariseFleet(fleetAt(T + 120_000, 0), T + 120_000, config, after, false);
    expect(later.stormEndedAt).toBe(T + 60_000);
  });
});
