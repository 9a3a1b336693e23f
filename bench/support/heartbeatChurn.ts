import { Agent, request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * Background Node updates as a fleet makes them: heartbeats, each a strategic-merge status
 * patch that changes only the lastHeartbeatTime of a Node's kubelet conditions, at a steady
 * rate spread evenly over time and round-robin over the Nodes. Sent with plain https (keep-
 * alive, the admin token) rather than client-node, whose response parsing would cost this
 * process more than the patches cost the API server.
 *
 * The rate the issue measures against: 33 updates a second at 5,000 nodes (the kubelets'
 * status reports plus the agents' heartbeats), i.e. 6.6 per second per 1,000 nodes.
 */
export const UPDATES_PER_SECOND_PER_1000_NODES = 6.6;

const KUBELET_CONDITIONS = ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'];
const TICK_MS = 50;
/** More in flight than this and the API server is not keeping up: the patch is counted as skipped, not queued. */
const MAX_IN_FLIGHT = 32;

export interface ChurnFigures {
  /** Seconds it ran. */
  seconds: number;
  /** What it was asked for. */
  targetPerSecond: number;
  sent: number;
  ok: number;
  failed: number;
  /** Patches not sent because MAX_IN_FLIGHT were still unanswered. */
  skipped: number;
  achievedPerSecond: number;
}

export interface HeartbeatChurn {
  /** The counters so far. */
  figures(): ChurnFigures;
  stop(): Promise<ChurnFigures>;
}

export function heartbeatPatch(at: Date): string {
  const lastHeartbeatTime = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return JSON.stringify({ status: { conditions: KUBELET_CONDITIONS.map((type) => ({ type, lastHeartbeatTime })) } });
}

export function startHeartbeatChurn(admin: KubeConfig, nodeNames: readonly string[], perSecond: number): HeartbeatChurn {
  const cluster = admin.getCurrentCluster();
  const token = admin.getCurrentUser()?.token;
  if (!cluster?.caData || !token) throw new Error('heartbeat churn: the admin kubeconfig has no certificate-authority-data or no token');
  if (nodeNames.length === 0) throw new Error('heartbeat churn: no Nodes to send heartbeats for');
  const server = new URL(cluster.server);
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT, ca: Buffer.from(cluster.caData, 'base64').toString('utf8') });
  const startedAt = Date.now();
  let stoppedAt: number | undefined;
  let owed = 0;
  let next = 0;
  let inFlight = 0;
  const counts = { sent: 0, ok: 0, failed: 0, skipped: 0 };
  let drained: (() => void) | undefined;

  const send = () => {
    const name = nodeNames[next] as string;
    next = (next + 1) % nodeNames.length;
    const body = heartbeatPatch(new Date());
    inFlight += 1;
    counts.sent += 1;
    const req = request(
      {
        host: server.hostname,
        port: server.port,
        method: 'PATCH',
        path: `/api/v1/nodes/${name}/status`,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/strategic-merge-patch+json',
          'content-length': Buffer.byteLength(body),
          accept: 'application/json',
        },
        agent,
      },
      (res) => {
        res.resume();
        res.on('end', () => settle(res.statusCode === 200));
      },
    );
    req.on('error', () => settle(false));
    req.end(body);
  };
  const settle = (ok: boolean) => {
    inFlight -= 1;
    if (ok) counts.ok += 1;
    else counts.failed += 1;
    if (inFlight === 0) drained?.();
  };

  let last = startedAt;
  const timer = setInterval(() => {
    const now = Date.now();
    owed += ((now - last) / 1000) * perSecond;
    last = now;
    for (; owed >= 1; owed -= 1) {
      if (inFlight >= MAX_IN_FLIGHT) counts.skipped += 1;
      else send();
    }
  }, TICK_MS);

  const figures = (): ChurnFigures => {
    const seconds = ((stoppedAt ?? Date.now()) - startedAt) / 1000;
    return {
      seconds: Number(seconds.toFixed(1)),
      targetPerSecond: perSecond,
      ...counts,
      achievedPerSecond: Number((counts.ok / Math.max(seconds, 1e-3)).toFixed(2)),
    };
  };
  return {
    figures,
    async stop() {
      clearInterval(timer);
      stoppedAt = Date.now();
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      agent.destroy();
      return figures();
    },
  };
}
