import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type V1Taint,
} from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testCluster } from '../cluster/testCluster.js';
import { startArmStandIn, startTokenStandIn, type ArmStandIn, type TokenStandIn } from '../support/armStandIn.js';
import { CliProcess, controllerCli, eventually as waitFor } from '../support/cliProcess.js';

/**
 * The controller end to end: built CLI processes running as the nodepulse-controller
 * ServiceAccount against the real API server, the azure provider pointed at the ARM stand-in,
 * test nodes made NotReady by patching their status as a kubelet would.
 */
const manifest = (name: string) => fileURLToPath(new URL(`../../manifests/base/${name}`, import.meta.url));
const SUB = '0b1f6471-1bf0-4dda-aec3-111122223333';
const RG = 'MC_e2e_cluster_eastus';
const VMSS = 'aks-nodepool1-12345678-vmss';
const TOKEN = 'e2e-arm-token';
const ASSERTION = 'e2e-projected-token';
const poolLabel = 'nodepulse.io/test-pool';

const cluster = testCluster();
const admin = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
const leases = cluster.adminKubeConfig().makeApiClient(CoordinationV1Api);
let arm: ArmStandIn;
let login: TokenStandIn;
let dir: string;
let controllerKubeconfig: string;
let tokenFile: string;
const replicas: CliProcess[] = [];
const createdNodes: string[] = [];

beforeAll(async () => {
  await cluster.kubectl(['apply', '-f', manifest('namespace.yaml'), '-f', manifest('controller-rbac.yaml')]);
  controllerKubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-controller');
  arm = await startArmStandIn({ token: TOKEN });
  login = await startTokenStandIn({ tenantId: 'tenant-e2e', clientId: 'client-e2e', assertion: ASSERTION, token: TOKEN });
  dir = mkdtempSync(join(tmpdir(), 'nodepulse-controller-e2e-'));
  tokenFile = join(dir, 'azure-identity-token');
  writeFileSync(tokenFile, ASSERTION);
});

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop()));
  await Promise.all(createdNodes.splice(0).map((name) => admin.deleteNode({ name }).catch(() => undefined)));
  arm.calls.length = 0;
});

afterAll(async () => {
  await arm?.close();
  await login?.close();
});

/** `count` nodes of a fresh pool, Ready, each a VMSS instance with its index as instance id. */
async function createPool(count: number, taintsOf: (i: number) => V1Taint[] = () => []): Promise<{ pool: string; names: string[] }> {
  const pool = `p${randomBytes(3).toString('hex')}`;
  const names = Array.from({ length: count }, (_, i) => `np-e2e-${pool}-${i}`);
  for (const [i, name] of names.entries()) {
    await admin.createNode({
      body: {
        metadata: { name, labels: { [poolLabel]: pool, 'kubernetes.io/os': 'linux' } },
        spec: {
          providerID: `azure:///subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/${VMSS}/virtualMachines/${i}`,
          taints: taintsOf(i),
        },
      },
    });
    createdNodes.push(name);
    await setReady(name, 'True');
  }
  return { pool, names };
}

/** What the kubelet (or the node lifecycle controller) would write. */
async function setReady(name: string, status: 'True' | 'False'): Promise<void> {
  const now = new Date();
  await admin.patchNodeStatus(
    {
      name,
      body: {
        status: {
          conditions: [
            {
              type: 'Ready',
              status,
              reason: status === 'True' ? 'KubeletReady' : 'KubeletNotReady',
              message: status === 'True' ? 'kubelet is posting ready status' : 'container runtime is down',
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
          nodeInfo: { operatingSystem: 'linux', architecture: 'amd64', bootID: '', containerRuntimeVersion: '', kernelVersion: '', kubeProxyVersion: '', kubeletVersion: '', machineID: '', osImage: '', systemUUID: '' },
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

/** What the agent would publish: one of its conditions. */
async function setCondition(name: string, type: string, status: 'True' | 'False'): Promise<void> {
  const now = new Date();
  await admin.patchNodeStatus(
    { name, body: { status: { conditions: [{ type, status, reason: type, message: 'set by the test', lastHeartbeatTime: now, lastTransitionTime: now }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

function controllerConfig(pool: string, overrides: { stepTimeoutSeconds?: number; quarantine?: object } = {}) {
  return {
    ...(overrides.quarantine ? { quarantine: overrides.quarantine } : {}),
    kubeconfig: controllerKubeconfig,
    nodeSelector: `${poolLabel}=${pool}`,
    passIntervalSeconds: 0.5,
    detection: { notReadySeconds: 2, noStatusSeconds: 3600, remediateAfterSeconds: 1, registrationGraceSeconds: 1 },
    ladder: {
      recoveryWaitSeconds: { reboot: 3, reimage: 3, redeploy: 3 },
      stepTimeoutSeconds: overrides.stepTimeoutSeconds ?? 20,
      flapWindowSeconds: 60,
      overallBoundSeconds: 600,
    },
    safety: { minStartSpacingSeconds: 0, stormCooldownSeconds: 0 },
    provider: {
      type: 'azure',
      azure: {
        armEndpoint: arm.url,
        authorityHost: login.url,
        tenantId: 'tenant-e2e',
        clientId: 'client-e2e',
        federatedTokenFile: tokenFile,
        pollIntervalSeconds: 0.2,
      },
    },
    leaderElection: { leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 },
    metrics: { address: '127.0.0.1', port: 0 },
  };
}

function startReplica(podName: string, config: object): CliProcess {
  const replica = CliProcess.start(controllerCli, dir, podName, config, { POD_NAME: podName });
  replicas.push(replica);
  return replica;
}

/** Our events about `node`, oldest first. */
async function eventsOf(node: string): Promise<CoreV1Event[]> {
  const list = await admin.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node}` });
  return list.items
    .filter((e) => e.source?.component === 'nodepulse-controller')
    .sort((a, b) => String(a.eventTime).localeCompare(String(b.eventTime)) || String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
}

const reasonsOf = async (node: string) => (await eventsOf(node)).map((e) => e.reason);

/** Polls with every replica's log in the failure message. */
const eventually = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number) => waitFor(what, check, timeoutMs, replicas, 200);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const armCallsFor = (instance: string, action?: string) => arm.actionCalls(action).filter((c) => c.instanceId === instance);

async function metricsOf(replica: CliProcess): Promise<string> {
  const started = await eventually('the metrics port in the log', async () => replica.logged('nodepulse controller starting')[0], 10_000);
  const response = await fetch(`http://127.0.0.1:${String(started.metricsPort)}/metrics`);
  return response.text();
}

async function leaseHolder(): Promise<string> {
  const lease = await leases.readNamespacedLease({ name: 'nodepulse-controller', namespace: 'nodepulse' });
  return lease.spec?.holderIdentity ?? '';
}

describe('the remediation controller end to end', () => {
  it('walks a NotReady node through reboot, reimage and redeploy on its own scale set instance, with the AKS events', async () => {
    const { pool, names } = await createPool(5);
    const replica = startReplica('replica-a', controllerConfig(pool));
    await eventually('the replica to lead', async () => ((await leaseHolder()).startsWith('replica-a') ? true : undefined), 15_000);
    const sick = names[0] ?? '';
    await setReady(sick, 'False');
    await eventually('NodeRedeployEnd', async () => ((await reasonsOf(sick)).includes('NodeRedeployEnd') ? true : undefined), 60_000);
    await replica.stop();

    const events = await eventsOf(sick);
    expect(events.slice(0, 6).map((e) => e.reason)).toEqual([
      'NodeRebootStart',
      'NodeRebootEnd',
      'NodeReimageStart',
      'NodeReimageEnd',
      'NodeRedeployStart',
      'NodeRedeployEnd',
    ]);
    expect(events[0]?.message).toMatch(/^Reboot started because Ready=False persisted \d+s, unhealthy for \d+s; first step of the sequence \(attempt 1 of 3\)$/);
    expect(events[0]).toMatchObject({ type: 'Normal', reportingComponent: 'nodepulse-controller', involvedObject: { kind: 'Node', name: sick } });
    expect(armCallsFor('0', 'restart')).toHaveLength(1);
    expect(armCallsFor('0', 'reimage')).toHaveLength(1);
    expect(armCallsFor('0', 'redeploy')).toHaveLength(1);
    expect(arm.actionCalls().every((c) => c.instanceId === '0')).toBe(true);
    expect(arm.scaleSetLevelCalls()).toEqual([]);
    expect(login.entraRequests.length).toBeGreaterThanOrEqual(1);
  });

  it('a node that recovers after the reboot stops there', async () => {
    const { pool, names } = await createPool(5);
    const replica = startReplica('replica-a', controllerConfig(pool));
    const sick = names[1] ?? '';
    await eventually('the replica to lead', async () => ((await leaseHolder()).startsWith('replica-a') ? true : undefined), 15_000);
    await setReady(sick, 'False');
    await eventually('NodeRebootEnd', async () => ((await reasonsOf(sick)).includes('NodeRebootEnd') ? true : undefined), 30_000);
    await setReady(sick, 'True');
    await eventually('NodeRemediationRecovered', async () => ((await reasonsOf(sick)).includes('NodeRemediationRecovered') ? true : undefined), 10_000);
    // Past the reboot's recovery wait: no reimage follows.
    await sleep(4_000);
    expect(await reasonsOf(sick)).toEqual(['NodeRebootStart', 'NodeRebootEnd', 'NodeRemediationRecovered']);
    expect(armCallsFor('1')).toHaveLength(1);
    const metrics = await metricsOf(replica);
    expect(metrics).toContain('nodepulse_remediation_steps_started_total{step="reboot",provider="azure"} 1');
    expect(metrics).toContain('nodepulse_remediation_steps_succeeded_total{step="reboot"} 1');
    const node = await admin.readNode({ name: sick });
    expect(JSON.parse(node.metadata?.annotations?.['nodepulse.io/remediation-state'] ?? '{}')).toMatchObject({ phase: 'recovered', step: 'reboot' });
  });

  it('with 3 of 5 nodes NotReady nothing starts, and the event and the metrics say why', async () => {
    const { pool, names } = await createPool(5);
    const replica = startReplica('replica-a', controllerConfig(pool));
    await eventually('the replica to lead', async () => ((await leaseHolder()).startsWith('replica-a') ? true : undefined), 15_000);
    const sick = names.slice(0, 3);
    for (const name of sick) await setReady(name, 'False');
    const skipped = await eventually(
      'a circuit-breaker event',
      async () => (await eventsOf(sick[0] ?? '')).find((e) => e.reason === 'NodeRemediationSkipped'),
      20_000,
    );
    expect(skipped).toMatchObject({
      type: 'Warning',
      message: 'Not remediating (circuit-breaker): circuit breaker open: 3 of 5 nodes are unhealthy, more than the 1 allowed (20% of 5, at least 1)',
    });
    await sleep(2_000);
    for (const name of sick) expect(await reasonsOf(name)).toEqual(['NodeRemediationSkipped']);
    expect(arm.calls).toEqual([]);
    const metrics = await metricsOf(replica);
    expect(metrics).toContain('nodepulse_remediation_circuit_breaker_open 1');
    expect(metrics).toContain('nodepulse_remediation_unhealthy_nodes 3');
    expect(metrics).toContain('nodepulse_remediation_blocked_nodes{rule="circuit-breaker"} 3');
  });

  it('a node the cluster autoscaler is deleting is skipped', async () => {
    const { pool, names } = await createPool(5, (i) => (i === 0 ? [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' }] : []));
    startReplica('replica-a', controllerConfig(pool));
    await eventually('the replica to lead', async () => ((await leaseHolder()).startsWith('replica-a') ? true : undefined), 15_000);
    const leaving = names[0] ?? '';
    await setReady(leaving, 'False');
    const skipped = await eventually(
      'a skip event',
      async () => (await eventsOf(leaving)).find((e) => e.reason === 'NodeRemediationSkipped'),
      20_000,
    );
    expect(skipped.message).toBe('Not remediating (to-be-deleted): taint ToBeDeletedByClusterAutoscaler: the cluster autoscaler is removing it');
    await sleep(2_000);
    expect(await reasonsOf(leaving)).toEqual(['NodeRemediationSkipped']);
    expect(arm.calls).toEqual([]);
  });

  it('killing the leader mid-ladder hands over to the second replica, which resumes without repeating the step', async () => {
    const { pool, names } = await createPool(5);
    // The reboot runs long (an operation that keeps polling), so the leader dies in the middle of it.
    arm.script({ kind: 'accepted', polls: 1_000_000, retryAfter: 1 });
    const config = controllerConfig(pool, { stepTimeoutSeconds: 8 });
    const first = startReplica('replica-a', config);
    await eventually('replica-a to lead', async () => ((await leaseHolder()).startsWith('replica-a') ? true : undefined), 15_000);
    startReplica('replica-b', config);
    const sick = names[2] ?? '';
    await setReady(sick, 'False');
    await eventually('NodeRebootStart', async () => ((await reasonsOf(sick)).includes('NodeRebootStart') ? true : undefined), 20_000);
    await eventually('the restart to reach ARM', async () => (armCallsFor('2', 'restart').length === 1 ? true : undefined), 10_000);
    await first.kill();

    await eventually('replica-b to lead', async () => ((await leaseHolder()).startsWith('replica-b') ? true : undefined), 15_000);
    const reimage = await eventually(
      'NodeReimageStart from replica-b',
      async () => (await eventsOf(sick)).find((e) => e.reason === 'NodeReimageStart'),
      40_000,
    );
    expect(reimage.reportingInstance).toMatch(/^replica-b_/);
    await eventually('NodeReimageEnd', async () => ((await reasonsOf(sick)).includes('NodeReimageEnd') ? true : undefined), 15_000);
    expect(armCallsFor('2', 'restart')).toHaveLength(1);
    expect(armCallsFor('2', 'reimage')).toHaveLength(1);
    const reasons = await reasonsOf(sick);
    expect(reasons.filter((r) => r === 'NodeRebootStart')).toHaveLength(1);
    expect(reasons.slice(0, 2)).toEqual(['NodeRebootStart', 'NodeReimageStart']);
  });

  it('quarantines a node with our NoSchedule taint while an agent condition is True, and lifts it when it clears', async () => {
    const { pool, names } = await createPool(5);
    startReplica('replica-a', controllerConfig(pool, { quarantine: { enabled: true, conditions: ['KonnectivityUnavailable'] } }));
    await eventually('the replica to lead', async () => ((await leaseHolder()).startsWith('replica-a') ? true : undefined), 15_000);
    const node = names[3] ?? '';
    const ourTaint = async () => (await admin.readNode({ name: node })).spec?.taints?.find((t) => t.key === 'nodepulse.io/quarantined');
    await setCondition(node, 'KonnectivityUnavailable', 'True');
    expect(await eventually('the quarantine taint', ourTaint, 10_000)).toMatchObject({ effect: 'NoSchedule' });
    await setCondition(node, 'KonnectivityUnavailable', 'False');
    await eventually('the taint to go', async () => ((await ourTaint()) === undefined ? true : undefined), 10_000);
    expect(await reasonsOf(node)).toEqual(['NodeQuarantined', 'NodeQuarantineLifted']);
    expect(arm.calls).toEqual([]);
  });
});
