import { describe, expect, it } from 'vitest';
import { readNode } from '../../controller/nodeHealth.js';
import { makeNode } from '../support/nodeFixtures.js';

const NOW = Date.parse('2026-03-02T08:30:00Z');
const options = { now: NOW, registrationGraceMs: 60_000 };

describe('reading a Node from the API server', () => {
  it('extracts Ready and since when, the heartbeat, taints, OS, provider id and other conditions', () => {
    const node = makeNode({
      name: 'n1',
      ready: 'False',
      readySince: NOW - 600_000,
      heartbeatAt: NOW - 30_000,
      taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule', value: '1' }],
      os: 'windows',
      providerID: 'azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/3',
      conditions: { KonnectivityProblem: ['True', NOW - 120_000] },
    });
    const reading = readNode(node, options);
    expect(reading).toMatchObject({
      ok: true,
      facts: {
        name: 'n1',
        ready: 'False',
        readySince: NOW - 600_000,
        lastHeartbeatAt: NOW - 30_000,
        everReady: true,
        os: 'windows',
        taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule', value: '1' }],
        conditions: [{ type: 'KonnectivityProblem', status: 'True', since: NOW - 120_000 }],
      },
    });
  });

  it('accepts timestamps as RFC 3339 strings, as raw JSON carries them', () => {
    const node = {
      metadata: { name: 'n1', creationTimestamp: '2026-01-01T00:00:00Z' },
      status: { conditions: [{ type: 'Ready', status: 'Unknown', lastTransitionTime: '2026-03-02T08:20:00Z' }] },
    };
    const reading = readNode(node, options);
    expect(reading.ok && reading.facts.readySince).toBe(Date.parse('2026-03-02T08:20:00Z'));
  });

  it('refuses objects that are not Nodes with a clear error', () => {
    expect(readNode(null, options)).toEqual({ ok: false, error: 'node is not an object' });
    expect(readNode({ metadata: {} }, options)).toEqual({ ok: false, error: 'node has no metadata.name' });
  });

  it('reads malformed fields as unknown, never as a reason to act', () => {
    const node = {
      metadata: { name: 'n1', labels: 'x', annotations: { a: 1, b: 'ok' } },
      spec: { taints: [{ key: 5 }, 'junk', { key: 'k', effect: 'NoSchedule' }] },
      status: {
        conditions: [{ type: 'Ready', status: 'Maybe' }, 'junk', { type: 'Disk', status: 'True', lastTransitionTime: 'not a date' }],
        nodeInfo: { operatingSystem: 42 },
      },
    };
    const reading = readNode(node, options);
    if (!reading.ok) throw new Error(reading.error);
    expect(reading.facts).toMatchObject({
      ready: 'Missing',
      everReady: false,
      os: 'unknown',
      labels: {},
      annotations: { b: 'ok' },
      taints: [{ key: 'k', effect: 'NoSchedule' }],
      conditions: [{ type: 'Disk', status: 'True', since: NOW }],
    });
  });

  it('a transition time in the future (node clock ahead) is taken as now', () => {
    const reading = readNode(makeNode({ ready: 'False', readySince: NOW + 3_600_000 }), options);
    expect(reading.ok && reading.facts.readySince).toBe(NOW);
  });

  it('without a transition time, the first observation of the status is remembered across reads', () => {
    const node = { metadata: { name: 'n1' }, status: { conditions: [{ type: 'Ready', status: 'False' }] } };
    const first = readNode(node, options);
    if (!first.ok) throw new Error(first.error);
    const later = readNode(node, { ...options, now: NOW + 300_000, memory: first.memory });
    expect(later.ok && later.facts.readySince).toBe(NOW);
  });

  it('a node whose Ready has not been True since registering never became Ready, unless we saw it Ready', () => {
    const created = NOW - 3_600_000;
    const neverReady = makeNode({ ready: 'False', createdAt: created, readySince: created + 5_000 });
    const reading = readNode(neverReady, options);
    expect(reading.ok && reading.facts.everReady).toBe(false);
    const seen = readNode(neverReady, { ...options, memory: { ready: 'True', firstSeenAt: created, sawReady: true } });
    expect(seen.ok && seen.facts.everReady).toBe(true);
    const wentDownLater = readNode(makeNode({ ready: 'False', createdAt: created, readySince: created + 600_000 }), options);
    expect(wentDownLater.ok && wentDownLater.facts.everReady).toBe(true);
  });
});
