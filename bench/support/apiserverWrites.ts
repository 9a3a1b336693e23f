/**
 * Write requests and bytes from kube-apiserver's own /metrics: apiserver_request_total
 * (by resource, subresource, verb) and apiserver_request_body_size_bytes (by resource, verb).
 * Counters only grow, so a phase's cost is the difference of two readings.
 */

export interface WriteCounts {
  /** PATCH/PUT nodes/status. */
  nodeStatusWrites: number;
  /** POST/PATCH/PUT events (core and events.k8s.io). */
  eventWrites: number;
  /** Any other write (POST/PUT/PATCH/DELETE), Leases aside. */
  otherWrites: number;
  /** Lease writes: the API server renews its own identity Lease every 10 s, so these are not the client's. */
  leaseWrites: number;
  /** Request bodies of node writes, bytes. */
  nodeBytes: number;
  /** Request bodies of event writes, bytes. */
  eventBytes: number;
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);

function labels(line: string): Record<string, string> {
  const body = line.slice(line.indexOf('{') + 1, line.lastIndexOf('}'));
  return Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]));
}

const value = (line: string) => Number(line.slice(line.lastIndexOf(' ') + 1));

export function parseWriteCounts(metrics: string): WriteCounts {
  const counts: WriteCounts = { nodeStatusWrites: 0, eventWrites: 0, otherWrites: 0, leaseWrites: 0, nodeBytes: 0, eventBytes: 0 };
  for (const line of metrics.split('\n')) {
    if (line.startsWith('apiserver_request_total{')) {
      const l = labels(line);
      if (!WRITE_VERBS.has(l.verb ?? '')) continue;
      if (l.resource === 'nodes' && l.subresource === 'status') counts.nodeStatusWrites += value(line);
      else if (l.resource === 'events') counts.eventWrites += value(line);
      else if (l.resource === 'leases') counts.leaseWrites += value(line);
      else counts.otherWrites += value(line);
    } else if (line.startsWith('apiserver_request_body_size_bytes_sum{')) {
      const l = labels(line);
      if (l.resource === 'nodes') counts.nodeBytes += value(line);
      else if (l.resource === 'events') counts.eventBytes += value(line);
    }
  }
  return counts;
}

export function writesBetween(before: WriteCounts, after: WriteCounts): WriteCounts {
  return {
    nodeStatusWrites: after.nodeStatusWrites - before.nodeStatusWrites,
    eventWrites: after.eventWrites - before.eventWrites,
    otherWrites: after.otherWrites - before.otherWrites,
    leaseWrites: after.leaseWrites - before.leaseWrites,
    nodeBytes: after.nodeBytes - before.nodeBytes,
    eventBytes: after.eventBytes - before.eventBytes,
  };
}
