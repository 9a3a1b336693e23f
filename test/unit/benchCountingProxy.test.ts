import { describe, expect, it } from 'vitest';
import { classifyRequest, talliesBetween, type RequestTally } from '../../bench/support/countingProxy.js';
import { heartbeatPatch } from '../../bench/support/heartbeatChurn.js';

const tally = (requests: number, responseBytes: number): RequestTally => ({
  requests,
  requestBytes: 10 * requests,
  responseBytes,
  largestResponseBytes: responseBytes,
  compressed: 0,
  firstAt: 0,
  lastEndAt: 0,
});

describe('the controller-scale bench counts API requests in the API server’s own verbs', () => {
  it('tells a LIST page, a WATCH and a GET of one object apart', () => {
    expect(classifyRequest('GET', '/api/v1/nodes?limit=500&continue=abc')).toBe('LIST nodes');
    expect(classifyRequest('GET', '/api/v1/nodes?watch=true&resourceVersion=7&allowWatchBookmarks=true')).toBe('WATCH nodes');
    expect(classifyRequest('GET', '/api/v1/watch/nodes')).toBe('WATCH nodes');
    expect(classifyRequest('GET', '/api/v1/nodes/scale-00001')).toBe('GET nodes');
    expect(classifyRequest('GET', '/api/v1/namespaces/default/events?watch=1&fieldSelector=source%3Dx')).toBe('WATCH events');
  });

  it('names writes by method, resource and subresource, in any API group', () => {
    expect(classifyRequest('PATCH', '/api/v1/nodes/scale-00001')).toBe('PATCH nodes');
    expect(classifyRequest('PATCH', '/api/v1/nodes/scale-00001/status')).toBe('PATCH nodes/status');
    expect(classifyRequest('PUT', '/apis/coordination.k8s.io/v1/namespaces/nodepulse/leases/nodepulse-controller')).toBe('PUT leases');
    expect(classifyRequest('POST', '/api/v1/namespaces/default/events')).toBe('POST events');
  });

  it('gives an interval’s cost as the difference of two readings, leaving out kinds that did not move', () => {
    const before = { 'LIST nodes': tally(10, 5000), 'PUT leases': tally(3, 300) };
    const after = { 'LIST nodes': tally(10, 5000), 'PUT leases': tally(5, 500), 'WATCH nodes': tally(1, 9000) };
    expect(talliesBetween(before, after)).toEqual({
      'PUT leases': { requests: 2, requestBytes: 20, responseBytes: 200, compressed: 0 },
      'WATCH nodes': { requests: 1, requestBytes: 10, responseBytes: 9000, compressed: 0 },
    });
  });
});

describe('the churn generator’s heartbeat', () => {
  it('changes only lastHeartbeatTime of the kubelet’s conditions, at the second as the API server stores it', () => {
    const patch = JSON.parse(heartbeatPatch(new Date('2026-11-23T10:00:00.750Z'))) as { status: { conditions: Array<Record<string, string>> } };
    expect(patch).toEqual({
      status: {
        conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({ type, lastHeartbeatTime: '2026-11-23T10:00:00Z' })),
      },
    });
  });
});
