import { describe, expect, it } from 'vitest';
import { parseWriteCounts, writesBetween } from '../../bench/support/apiserverWrites.js';

const metrics = `# HELP apiserver_request_total Counter of apiserver requests
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"} 7
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="",verb="GET",version="v1"} 40
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="events.k8s.io",resource="events",scope="resource",subresource="",verb="PATCH",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 60
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_body_size_bytes_sum{group="",resource="nodes",verb="patch"} 1500
apiserver_request_body_size_bytes_sum{group="",resource="events",verb="create"} 900
apiserver_request_body_size_bytes_sum{group="coordination.k8s.io",resource="leases",verb="update"} 30000
`;

describe('API write counts from kube-apiserver metrics', () => {
  it('counts node status writes (any response code) and event writes, and keeps reads and the server’s own lease renewals apart', () => {
    expect(parseWriteCounts(metrics)).toEqual({ nodeStatusWrites: 8, eventWrites: 5, otherWrites: 1, leaseWrites: 60, nodeBytes: 1500, eventBytes: 900 });
  });

  it('gives what a phase cost as the difference of two readings', () => {
    const before = parseWriteCounts(metrics);
    const after = parseWriteCounts(metrics.replace('subresource="status",verb="PATCH",version="v1"} 7', 'subresource="status",verb="PATCH",version="v1"} 10'));
    expect(writesBetween(before, after)).toMatchObject({ nodeStatusWrites: 3, eventWrites: 0, leaseWrites: 0 });
  });
});
