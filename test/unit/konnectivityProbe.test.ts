import { jsonLogger } from '../../common/log.js';
import { describe, expect, it } from 'vitest';
import { ConditionEngine } from '../../agent/conditions/conditionEngine.js';
import { agentConfigSchema } from '../../agent/config/schema.js';
import type { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import { KubeApiError, tokenUnreadable } from '../../common/kube/kubeClient.js';
import { ProbeLoop } from '../../agent/probeLoop.js';
import { KonnectivityEcho } from '../../agent/probes/konnectivityEcho.js';
import { KonnectivityProbe } from '../../agent/probes/konnectivityProbe.js';

/** An API server cut off from this node: every request hangs until its own timeout, as the agent's client ends it. */
function cutOff(): AgentKubeApi {
  const hang = (timeoutMs: number | undefined, signal: AbortSignal | undefined) =>
    new Promise<never>((_, reject) => {
      const timer = setTimeout(() => reject(new KubeApiError(`no answer within ${timeoutMs}ms`, 0, 'Timeout')), timeoutMs ?? 10_000);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
  return {
    getDeployment: (_ns: string, _name: string, signal?: AbortSignal, timeoutMs?: number) => hang(timeoutMs, signal),
    proxyGetPod: (_ns: string, _pod: string, _port: number, _path: string, timeoutMs: number, signal?: AbortSignal) => hang(timeoutMs, signal),
  } as unknown as AgentKubeApi;
}

describe('the konnectivity probe with the path cut', () => {
  it('in the probe loop, reads as KonnectivityTimeout (a node problem with figures), not as a probe error', async () => {
    const config = agentConfigSchema.parse({ nodeName: 'n1', probes: { konnectivity: { intervalSeconds: 1, timeoutMs: 900, podName: 'agent-x', podNamespace: 'nodepulse' } } });
    const probe = new KonnectivityProbe(config.probes.konnectivity, cutOff(), new KonnectivityEcho(60_000), 20258);
    const loop = new ProbeLoop([probe], new ConditionEngine([], 0), jsonLogger({ level: 'silent' }));
    try {
      const sample = await loop.sample(probe);
      expect(sample).toMatchObject({ healthy: false, reason: 'KonnectivityTimeout', figures: { outcome: 'timeout' } });
    } finally {
      loop.stop();
    }
  });

  it('an unreadable ServiceAccount token is an agent problem (ProbeReadError), not APIServerUnreachable', async () => {
    const config = agentConfigSchema.parse({ nodeName: 'n1', probes: { konnectivity: { intervalSeconds: 1, timeoutMs: 900, podName: 'agent-x', podNamespace: 'nodepulse' } } });
    const denied = () => Promise.reject(new KubeApiError("cannot read the token /var/run/secrets/kubernetes.io/serviceaccount/token: EACCES: permission denied", 0, tokenUnreadable));
    const api = { getDeployment: denied, proxyGetPod: denied } as unknown as AgentKubeApi;
    const probe = new KonnectivityProbe(config.probes.konnectivity, api, new KonnectivityEcho(60_000), 20258);
    const loop = new ProbeLoop([probe], new ConditionEngine([], 0), jsonLogger({ level: 'silent' }));
    try {
      const sample = await loop.sample(probe);
      expect(sample).toMatchObject({ healthy: false, reason: 'ProbeReadError', figures: { outcome: 'tokenUnreadable' } });
      expect(sample.message).toMatch(/EACCES.*an agent problem/);
    } finally {
      loop.stop();
    }
  });
});
