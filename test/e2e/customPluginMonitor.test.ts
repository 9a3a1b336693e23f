import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1NodeCondition } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import { npdCustomPluginMonitor } from '../fixtures/plugins/npdCustomPluginMonitor.js';
import { onlyProbes } from '../support/onlyProbes.js';

/**
 * An NPD custom-plugin-monitor file end to end: the built agent runs a real check script each
 * second and writes the condition its exit status sets, and the Event of its temporary rule, to
 * a real API server as its ServiceAccount.
 */
const cluster = testCluster();
const core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
const repo = join(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'nodepulse-e2e-plugins-'));
const node = 'e2e-custom-plugin';
/** The check exits with what this file holds. */
const exitFile = join(work, 'exit-status');
let agent: AgentProcess | undefined;

async function condition(): Promise<V1NodeCondition | undefined> {
  return (await core.readNode({ name: node })).status?.conditions?.find((c) => c.type === 'NTPProblem');
}

function conditionWith(a: AgentProcess, want: (c: V1NodeCondition) => boolean): Promise<V1NodeCondition> {
  return eventually('NTPProblem on the Node', async () => {
    const c = await condition();
    return c && want(c) ? c : undefined;
  }, 20_000, a);
}

beforeAll(async () => {
  await cluster.kubectl(['apply', '-f', join(repo, 'manifests/base/namespace.yaml'), '-f', join(repo, 'manifests/base/agent-rbac.yaml')]);
  const kubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  await core.createNode({ body: { metadata: { name: node, labels: { 'kubernetes.io/os': 'linux' } } } });
  writeFileSync(exitFile, '0');
  const check = join(work, 'config/plugin/check_ntp.sh');
  mkdirSync(join(work, 'config/plugin'), { recursive: true });
  writeFileSync(check, `#!/bin/sh\ncode=$(cat ${exitFile})\necho "ntp check exited $code"\nexit $code\n`);
  chmodSync(check, 0o755);
  const monitorFile = join(work, 'ntp-monitor.json');
  // NPD's config/custom-plugin-monitor.json but for the interval (a second, not 30).
  const npdFile = structuredClone(npdCustomPluginMonitor);
  npdFile.pluginConfig.invoke_interval = '1s';
  writeFileSync(monitorFile, JSON.stringify(npdFile));
  agent = AgentProcess.start(work, `${node}-${Date.now()}`, {
    nodeName: node,
    kubeconfig,
    server: { address: '127.0.0.1', port: await freeLoopbackPort() },
    publish: { enabled: true, heartbeatSeconds: 300, backoffMaxSeconds: 2 },
    probes: onlyProbes({}),
    monitors: { customPlugins: { enabled: true, files: [monitorFile], workingDir: work } },
  });
});

afterAll(async () => {
  await agent?.stop();
});

describe('NPD custom plugin monitor on a real API server', () => {
  it("a check script's exit status sets its condition on the Node (0 healthy, 1 True with its output, 2 Unknown), and its temporary rule is a Warning Event", async () => {
    const a = agent as AgentProcess;
    await conditionWith(a, (c) => c.status === 'False' && c.reason === 'NTPIsUp' && c.message === 'ntp service is up');

    writeFileSync(exitFile, '1');
    const raised = await conditionWith(a, (c) => c.status === 'True');
    expect(raised).toMatchObject({ reason: 'NTPIsDown', message: 'ntp check exited 1' });
    const event = await eventually('the NTPIsDown Event', async () => {
      const list = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node},reason=NTPIsDown` });
      return list.items.find((e) => e.type === 'Warning');
    }, 20_000, a);
    expect(event.source?.component).toBe('nodepulse-agent');

    writeFileSync(exitFile, '2');
    const unknown = await conditionWith(a, (c) => c.status === 'Unknown');
    expect(unknown).toMatchObject({ reason: 'NTPIsUp', message: 'ntp check exited 2' });

    writeFileSync(exitFile, '0');
    await conditionWith(a, (c) => c.status === 'False' && c.reason === 'NTPIsUp');
  });
});
