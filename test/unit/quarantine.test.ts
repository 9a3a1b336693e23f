import { describe, expect, it } from 'vitest';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import type { FleetSummary } from '../../controller/fleet.js';
import { readNode } from '../../controller/nodeHealth.js';
import { decideQuarantine } from '../../controller/quarantine.js';
import { makeNode, type NodeShape } from '../support/nodeFixtures.js';

const NOW = Date.parse('2026-03-02T08:00:00Z');
const enabled = controllerConfigSchema.parse({ quarantine: { enabled: true, conditions: ['KonnectivityProblem'] } });
const calm: FleetSummary = { nodes: 10, unhealthy: 0, quarantineWanted: 1, inFlight: 0, breakerOpen: false, paused: false };
const ourTaint = { key: 'nodepulse.io/quarantined', effect: 'NoSchedule' };

function factsOf(shape: NodeShape) {
  const reading = readNode(makeNode({ ready: 'True', heartbeatAt: NOW, ...shape }), { now: NOW });
  if (!reading.ok) throw new Error(reading.error);
  return reading.facts;
}
const problem: NodeShape = { conditions: { KonnectivityProblem: ['True', NOW - 60_000] } };
const cleared: NodeShape = { conditions: { KonnectivityProblem: ['False', NOW - 60_000] } };

describe('quarantine', () => {
  it('taints a node while a configured condition is True', () => {
    expect(decideQuarantine(factsOf(problem), calm, enabled)).toEqual({ kind: 'add', why: 'KonnectivityProblem True' });
  });

  it('removes the taint when the condition clears', () => {
    expect(decideQuarantine(factsOf({ ...cleared, taints: [ourTaint] }), calm, enabled)).toMatchObject({ kind: 'remove' });
  });

  it('changes nothing when the taint already matches the condition', () => {
    expect(decideQuarantine(factsOf({ ...problem, taints: [ourTaint] }), calm, enabled)).toEqual({ kind: 'none' });
    expect(decideQuarantine(factsOf(cleared), calm, enabled)).toEqual({ kind: 'none' });
  });

  it('is off by default, and then removes any taint of ours left behind', () => {
    const off = controllerConfigSchema.parse({});
    expect(decideQuarantine(factsOf(problem), calm, off)).toEqual({ kind: 'none' });
    expect(decideQuarantine(factsOf({ ...problem, taints: [ourTaint] }), calm, off)).toEqual({ kind: 'remove', why: 'quarantine is disabled' });
  });

  it('adds no taint when the condition is True on too much of the fleet (the same circuit breaker)', () => {
    const outage = { ...calm, quarantineWanted: 6 };
    expect(decideQuarantine(factsOf(problem), outage, enabled)).toMatchObject({ kind: 'hold', why: expect.stringContaining('6 of 10 nodes') });
  });

  it('holds while paused and leaves opted-out nodes alone', () => {
    expect(decideQuarantine(factsOf(problem), { ...calm, paused: true }, enabled)).toEqual({ kind: 'hold', why: 'controller paused' });
    const optedOut = factsOf({ ...problem, labels: { 'nodepulse.io/remediation': 'disabled' } });
    expect(decideQuarantine(optedOut, calm, enabled)).toMatchObject({ kind: 'hold' });
  });
});
