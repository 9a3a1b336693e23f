import { describe, expect, it } from 'vitest';
import { keys } from '../../common/contract.js';
import { readNode } from '../../controller/nodeHealth.js';
import { makeNode } from '../support/nodeFixtures.js';

const NOW = Date.parse('2026-03-02T08:30:00Z');
const options = { now: NOW, readySeenAnnotation: keys.readySeen };
const seenReady = { ready: 'True' as const, firstSeenAt: NOW - 86_400_000, sawReady: true };

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
    const reading = readNode(node, { ...options, memory: seenReady });
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

  it('a node counts as once Ready only on evidence: Ready now, seen Ready by the loop, or marked so on the Node; never from timestamps', () => {
    const created = NOW - 3_600_000;
    // However late the first status came, a node nobody saw Ready is not taken for one that was.
    for (const firstStatus of [5_000, 600_000, 1_800_000]) {
      const reading = readNode(makeNode({ ready: 'False', createdAt: created, readySince: created + firstStatus }), options);
      expect(reading.ok && reading.facts.everReady).toBe(false);
    }
    const neverReady = makeNode({ ready: 'False', createdAt: created, readySince: created + 5_000 });
    const seen = readNode(neverReady, { ...options, memory: seenReady });
    expect(seen.ok && seen.facts.everReady).toBe(true);
    const marked = makeNode({ ready: 'False', createdAt: created, readySince: created + 5_000, annotations: { [keys.readySeen]: '2026-03-02T07:00:00Z' } });
    const reading = readNode(marked, options);
    expect(reading.ok && reading.facts.everReady).toBe(true);
  });

  it('takes the OS from the kubernetes.io/os label when status.nodeInfo is missing', () => {
    const node = { metadata: { name: 'n1', labels: { 'kubernetes.io/os': 'linux' } }, status: { conditions: [] } };
    const reading = readNode(node, options);
    expect(reading.ok && reading.facts.os).toBe('linux');
  });

  it('reads the boot ID, which changes on every boot', () => {
    const node = { metadata: { name: 'n1' }, status: { nodeInfo: { bootID: 'b7f1c2d3-1111-2222-3333-444455556666' } } };
    const reading = readNode(node, options);
    expect(reading.ok && reading.facts.bootID).toBe('b7f1c2d3-1111-2222-3333-444455556666');
  });

  it('an agent condition not re-stated for two heartbeat periods reads as Unknown: a dead agent vouches for nothing', () => {
    const heartbeatMs = 300_000;
    const node = (beatAgo: number) => ({
      metadata: { name: 'n1' },
      status: {
        conditions: [
          { type: 'DNSProblem', status: 'True', lastTransitionTime: new Date(NOW - 3_600_000).toISOString(), lastHeartbeatTime: new Date(NOW - beatAgo).toISOString() },
        ],
      },
    });
    const fresh = readNode(node(2 * heartbeatMs), { ...options, conditionHeartbeatMs: heartbeatMs });
    expect(fresh.ok && fresh.facts.conditions[0]?.status).toBe('True');
    const stale = readNode(node(2 * heartbeatMs + 1000), { ...options, conditionHeartbeatMs: heartbeatMs });
    expect(stale.ok && stale.facts.conditions[0]?.status).toBe('Unknown');
  });

  it('after a span in which the controller could not see the API server, heartbeats count from its end: nodes could not report either', () => {
    const blindUntil = NOW - 60_000;
    const node = makeNode({ ready: 'True', readySince: NOW - 86_400_000, heartbeatAt: NOW - 900_000 });
    const reading = readNode(node, { ...options, blindUntil });
    expect(reading.ok && reading.facts.lastHeartbeatAt).toBe(blindUntil);
    const after = readNode(makeNode({ ready: 'True', readySince: NOW - 86_400_000, heartbeatAt: NOW - 5_000 }), { ...options, blindUntil });
    expect(after.ok && after.facts.lastHeartbeatAt).toBe(NOW - 5_000);
  });
});
