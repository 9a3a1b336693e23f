import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type CoreV1Event, type V1Taint } from '@kubernetes/client-node';
import type { ClusterAccess } from '../cluster/clusterAccess.js';
import { startArmStandIn, startTokenStandIn, type ArmStandIn, type TokenStandIn } from './armStandIn.js';
import { CliProcess, controllerCli, eventually as waitFor } from './cliProcess.js';

/**
 * What the controller's end-to-end tests share: a control plane with the controller's RBAC
 * applied, its ServiceAccount kubeconfig, the ARM and Entra ID stand-ins on loopback, test
 * pools of Nodes made NotReady by patching their status as a kubelet would, controller
 * replicas as built CLI processes, and readers of what an operator sees (events, Lease, metrics).
 */
const manifest = (name: string) => fileURLToPath(new URL(`../../manifests/base/${name}`, import.meta.url));
export const SUB = '0b1f6471-1bf0-4dda-aec3-111122223333';
const RG = 'MC_e2e_cluster_eastus';
const VMSS = 'aks-nodepool1-12345678-vmss';
const TOKEN = 'e2e-arm-token';
const ASSERTION = 'e2e-projected-token';
export const poolLabel = 'nodepulse.io/test-pool';

export interface ControllerOverrides {
  stepTimeoutSeconds?: number;
  retryDelaySeconds?: number;
  quarantine?: object;
  detection?: object;
  cache?: object;
  provider?: object;
  /** Merged into the azure provider's settings. */
  azure?: Record<string, unknown>;
}

export class RemediationHarness {
  readonly replicas: CliProcess[] = [];
  private readonly createdNodes: string[] = [];

  private constructor(
    readonly cluster: ClusterAccess,
    readonly admin: CoreV1Api,
    private readonly leases: CoordinationV1Api,
    readonly arm: ArmStandIn,
    readonly login: TokenStandIn,
    readonly dir: string,
    readonly controllerKubeconfig: string,
    private readonly tokenFile: string,
  ) {}

  static async start(cluster: ClusterAccess): Promise<RemediationHarness> {
    await cluster.kubectl(['apply', '-f', manifest('namespace.yaml'), '-f', manifest('controller-rbac.yaml')]);
    const controllerKubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-controller');
    const arm = await startArmStandIn({ token: TOKEN });
    const login = await startTokenStandIn({ tenantId: 'tenant-e2e', clientId: 'client-e2e', assertion: ASSERTION, token: TOKEN });
    const dir = mkdtempSync(join(tmpdir(), 'nodepulse-controller-e2e-'));
    const tokenFile = join(dir, 'azure-identity-token');
    writeFileSync(tokenFile, ASSERTION);
    const admin = cluster.adminKubeConfig();
    return new RemediationHarness(
      cluster,
      admin.makeApiClient(CoreV1Api),
      admin.makeApiClient(CoordinationV1Api),
      arm,
      login,
      dir,
      controllerKubeconfig,
      tokenFile,
    );
  }

  /** After each test: replicas stopped, its nodes deleted, the ARM call log emptied. */
  async reset(): Promise<void> {
    await Promise.all(this.replicas.splice(0).map((r) => r.stop()));
    await Promise.all(this.createdNodes.splice(0).map((name) => this.admin.deleteNode({ name }).catch(() => undefined)));
    this.arm.reset();
  }

  async close(): Promise<void> {
    await this.reset();
    await this.arm.close();
    await this.login.close();
  }

  /** `count` nodes of a fresh pool, Ready, each a VMSS instance with its index as instance id. */
  async createPool(count: number, taintsOf: (i: number) => V1Taint[] = () => []): Promise<{ pool: string; names: string[] }> {
    const pool = `p${randomBytes(3).toString('hex')}`;
    const names = Array.from({ length: count }, (_, i) => `np-e2e-${pool}-${i}`);
    for (const [i, name] of names.entries()) {
      await this.admin.createNode({
        body: {
          metadata: { name, labels: { [poolLabel]: pool, 'kubernetes.io/os': 'linux' } },
          spec: {
            providerID: `azure:///subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/${VMSS}/virtualMachines/${i}`,
            taints: taintsOf(i),
          },
        },
      });
      this.createdNodes.push(name);
      await this.setReady(name, 'True');
    }
    return { pool, names };
  }

  /** Deletes `name` with the test's other nodes when the test ends. */
  adopt(name: string): void {
    this.createdNodes.push(name);
  }

  /** What the kubelet (or the node lifecycle controller) would write. */
  async setReady(name: string, status: 'True' | 'False'): Promise<void> {
    const now = new Date();
    await this.admin.patchNodeStatus(
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
            nodeInfo: {
              operatingSystem: 'linux',
              architecture: 'amd64',
              bootID: `boot-${name}`,
              containerRuntimeVersion: '',
              kernelVersion: '',
              kubeProxyVersion: '',
              kubeletVersion: '',
              machineID: '',
              osImage: '',
              systemUUID: '',
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }

  /** What the agent would publish: one of its conditions. */
  async setCondition(name: string, type: string, status: 'True' | 'False'): Promise<void> {
    const now = new Date();
    await this.admin.patchNodeStatus(
      { name, body: { status: { conditions: [{ type, status, reason: type, message: 'set by the test', lastHeartbeatTime: now, lastTransitionTime: now }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }

  /** A controller config for `pool` with the AKS durations scaled down to seconds. */
  controllerConfig(pool: string, overrides: ControllerOverrides = {}): Record<string, unknown> {
    return {
      ...(overrides.quarantine ? { quarantine: overrides.quarantine } : {}),
      ...(overrides.cache ? { cache: overrides.cache } : {}),
      kubeconfig: this.controllerKubeconfig,
      nodeSelector: `${poolLabel}=${pool}`,
      passIntervalSeconds: 0.5,
      detection: { notReadySeconds: 2, noStatusSeconds: 3600, remediateAfterSeconds: 1, ...overrides.detection },
      ladder: {
        recoveryWaitSeconds: { reboot: 3, reimage: 3, redeploy: 3 },
        stepTimeoutSeconds: overrides.stepTimeoutSeconds ?? 20,
        retryDelaySeconds: overrides.retryDelaySeconds ?? 1,
        flapWindowSeconds: 60,
        overallBoundSeconds: 600,
      },
      safety: { minStartSpacingSeconds: 0, stormCooldownSeconds: 0 },
      provider: overrides.provider ?? {
        type: 'azure',
        azure: {
          armEndpoint: this.arm.url,
          authorityHost: this.login.url,
          tenantId: 'tenant-e2e',
          clientId: 'client-e2e',
          federatedTokenFile: this.tokenFile,
          pollIntervalSeconds: 0.2,
          ...overrides.azure,
        },
      },
      leaderElection: { leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 },
      metrics: { address: '127.0.0.1', port: 0 },
    };
  }

  startReplica(podName: string, config: object): CliProcess {
    const replica = CliProcess.start(controllerCli, this.dir, podName, config, { POD_NAME: podName });
    this.replicas.push(replica);
    return replica;
  }

  /** Our events about `node`, oldest first. */
  async eventsOf(node: string): Promise<CoreV1Event[]> {
    const list = await this.admin.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node}` });
    return list.items
      .filter((e) => e.source?.component === 'nodepulse-controller')
      .sort((a, b) => String(a.eventTime).localeCompare(String(b.eventTime)) || String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
  }

  async reasonsOf(node: string): Promise<Array<string | undefined>> {
    return (await this.eventsOf(node)).map((e) => e.reason);
  }

  /** Polls with every replica's log in the failure message. */
  eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
    return waitFor(what, check, timeoutMs, this.replicas, 200);
  }

  armCallsFor(instance: string, action?: string) {
    return this.arm.actionCalls(action).filter((c) => c.instanceId === instance);
  }

  async metricsPort(replica: CliProcess): Promise<number> {
    const started = await this.eventually('the metrics port in the log', async () => replica.logged('nodepulse controller starting')[0], 10_000);
    return Number(started.metricsPort);
  }

  async metricsOf(replica: CliProcess): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${await this.metricsPort(replica)}/metrics`);
    return response.text();
  }

  async leaseHolder(): Promise<string> {
    const lease = await this.leases.readNamespacedLease({ name: 'nodepulse-controller', namespace: 'nodepulse' });
    return lease.spec?.holderIdentity ?? '';
  }

  /** Waits until the replica named `podName` holds the Lease. */
  async leading(podName: string, timeoutMs = 15_000): Promise<void> {
    await this.eventually(`${podName} to lead`, async () => ((await this.leaseHolder()).startsWith(`${podName}_`) ? true : undefined), timeoutMs);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
