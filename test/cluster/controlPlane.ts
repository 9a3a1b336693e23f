import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { type BinaryName, ControlPlaneSetupError, resolveBinaries, resolveKwokStages } from './binaries.js';
import { ClusterAccess } from './clusterAccess.js';
import { writeKubeconfig } from './kubeconfig.js';
import { KWOK_NODE_ANNOTATION, createKwokNodes } from './kwokNodes.js';
import { ManagedProcess } from './managedProcess.js';
import { runDir } from './runDir.js';

export type ControlPlaneProfile = 'apiserver' | 'full';

export interface ControlPlaneOptions {
  /** `apiserver`: etcd + kube-apiserver. `full`: also controller-manager, scheduler and kwok nodes. */
  profile: ControlPlaneProfile;
  /** Simulated (kwok) nodes to create in the `full` profile; default 3. */
  nodes?: number;
  /** Where progress lines go; default stderr. */
  log?: (line: string) => void;
  /**
   * The address kube-apiserver binds and advertises (its serving certificate covers it);
   * default 127.0.0.1. The real node's profile gives the host end of the node's veth.
   */
  address?: string;
  /** More kube-apiserver flags (the real node's client CA and kubelet client certificate). */
  extraApiserverArgs?: readonly string[];
  /** More kube-controller-manager flags (`full` profile). */
  extraControllerManagerArgs?: readonly string[];
}

const READY_TIMEOUT_MS = 90_000;
const POLL_MS = 200;
/** Allocation range for Service IPs; nothing is ever sent to these addresses. */
const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
/** Pod IPs that kwok hands out: loopback, so any accidental traffic to a pod stays on this machine. */
const KWOK_POD_CIDR = '127.64.0.0/16';

const BINARIES_BY_PROFILE: Record<ControlPlaneProfile, readonly BinaryName[]> = {
  apiserver: ['etcd', 'kube-apiserver'],
  full: ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'],
};

/** A free TCP port on 127.0.0.1 (released right away; the child binds it a moment later). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', done);
  });
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === 'string') throw new Error('could not allocate a loopback port');
  return address.port;
}

/** GET <server>/readyz as admin; the serving certificate is not known yet, and the target is loopback. */
function apiserverReady(server: string, token: string): Promise<boolean> {
  return new Promise((done) => {
    const req = request(
      `${server}/readyz`,
      { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2_000 },
      (res) => {
        res.resume();
        done(res.statusCode === 200);
      },
    );
    req.on('error', () => done(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * The CA certificate out of the serving bundle the apiserver generated (leaf, then its CA).
 * Clients trust the CA alone; the controller-manager publishes it, and refuses non-CA entries.
 */
function certificateAuthorityOf(bundleFile: string): string {
  const pems = readFileSync(bundleFile, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const authorities = pems.filter((pem) => new X509Certificate(pem).ca);
  if (authorities.length === 0) throw new ControlPlaneSetupError(`${bundleFile} holds no CA certificate`);
  return authorities.join('');
}

/** A running control plane: everything ClusterAccess offers, plus how to stop it. */
export class ControlPlane extends ClusterAccess {
  private stopping: Promise<void> | undefined;

  constructor(
    kubeconfig: string,
    workDir: string,
    readonly profile: ControlPlaneProfile,
    /** Names of the kwok nodes (empty in the `apiserver` profile). */
    readonly nodeNames: readonly string[],
    /** Milliseconds from the call to startControlPlane until it was ready. */
    readonly startupMs: number,
    private readonly processes: readonly ManagedProcess[],
    private readonly removeDir: () => void,
    private readonly restartApiserverProcess: (downMs: number) => Promise<void>,
  ) {
    super(kubeconfig, workDir);
  }

  /** Stops kube-apiserver, keeps it down for `downMs`, starts it again on the same port and waits until ready. */
  restartApiserver(downMs: number): Promise<void> {
    return this.restartApiserverProcess(downMs);
  }

  /** Stops every component (newest first) and removes the temporary folder. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const proc of [...this.processes].reverse()) await proc.stop();
      this.removeDir();
    })();
    return this.stopping;
  }
}

/** Polls `check` until it returns true, failing early (with its log) if a component has died. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  processes: readonly ManagedProcess[],
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const dead = processes.find((proc) => !proc.running);
    if (dead) {
      throw new ControlPlaneSetupError(`${dead.name} exited while waiting for ${what}:\n${dead.logTail()}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      const logs = processes.map((proc) => `--- ${proc.name} (${proc.logFile})\n${proc.logTail(10)}`).join('\n');
      throw new ControlPlaneSetupError(`timed out after ${READY_TIMEOUT_MS / 1000}s waiting for ${what}\n${logs}`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * Starts etcd and kube-apiserver on 127.0.0.1 (and, for `full`, kube-controller-manager,
 * kube-scheduler and kwok with simulated nodes), waits until ready, and writes an admin
 * kubeconfig. Everything lives in a temporary folder that stop() (or process exit) removes.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { profile } = options;
  const nodeCount = options.nodes ?? 3;
  if (profile === 'full' && (!Number.isInteger(nodeCount) || nodeCount < 1)) {
    throw new ControlPlaneSetupError(`nodes must be a whole number of at least 1, got ${nodeCount}`);
  }
  const bin = await resolveBinaries(BINARIES_BY_PROFILE[profile]);

  const { dir, remove: removeDir } = runDir('nodepulse-cluster-');
  const processes: ManagedProcess[] = [];
  const start = (binary: string, name: string, args: string[]) => {
    const proc = new ManagedProcess(binary, args, join(dir, `${name}.log`));
    processes.push(proc);
    return proc;
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiserverPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const address = options.address ?? '127.0.0.1';
    const server = `https://${address}:${apiserverPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;

    // ServiceAccount token signing keys, so TokenRequest works and pods' identities are real.
    const serviceAccountKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const saKey = join(dir, 'sa.key');
    const saPub = join(dir, 'sa.pub');
    writeFileSync(saKey, serviceAccountKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(saPub, serviceAccountKeys.publicKey.export({ type: 'spki', format: 'pem' }));

    // The admin identity: a static token for a member of system:masters.
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'tokens.csv');
    writeFileSync(tokenFile, `${adminToken},nodepulse-admin,nodepulse-admin,"system:masters"\n`, { mode: 0o600 });

    const certDir = join(dir, 'certs');
    start(bin.etcd, 'etcd', [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=default=${etcdPeerUrl}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    // Started right away: the apiserver retries etcd until it answers, which saves a round of waiting.
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      // The `kubernetes` Service endpoint reconciler refuses a loopback address; nothing here needs it.
      '--endpoint-reconciler-type=none',
      `--secure-port=${apiserverPort}`,
      // Self-signed serving certificate (and its CA) for 127.0.0.1/localhost, generated into cert-dir.
      `--cert-dir=${certDir}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=Node,RBAC',
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--allow-privileged=true',
      '--enable-admission-plugins=NodeRestriction',
      // Without a controller-manager nobody creates each namespace's `default` ServiceAccount,
      // and the ServiceAccount admission plugin would then refuse every Pod (envtest does the same).
      ...(profile === 'apiserver' ? ['--disable-admission-plugins=ServiceAccount'] : []),
      '--profiling=false',
      ...(options.extraApiserverArgs ?? []),
    ];
    let apiserver = start(bin['kube-apiserver'], 'kube-apiserver', apiserverArgs);
    await waitFor('kube-apiserver /readyz', () => apiserverReady(server, adminToken), processes);

    const servingBundle = join(certDir, 'apiserver.crt');
    if (!existsSync(servingBundle)) throw new ControlPlaneSetupError(`kube-apiserver did not write ${servingBundle}`);
    const caPem = certificateAuthorityOf(servingBundle);
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, caPem);
    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfig, { server, caPem, token: adminToken, user: 'nodepulse-admin' });

    let nodeNames: string[] = [];
    if (profile === 'full') {
      nodeNames = await startNodeComponents({
        bin, dir, kubeconfig, caFile, saKey, nodeCount, start, processes, extraControllerManagerArgs: options.extraControllerManagerArgs ?? [],
      });
    }
    const restartApiserver = async (downMs: number) => {
      const index = processes.indexOf(apiserver);
      await apiserver.stop();
      await sleep(downMs);
      apiserver = new ManagedProcess(bin['kube-apiserver'], apiserverArgs, join(dir, 'kube-apiserver.log'));
      processes[index] = apiserver;
      await waitFor('kube-apiserver /readyz after a restart', () => apiserverReady(server, adminToken), processes);
    };
    const plane = new ControlPlane(kubeconfig, dir, profile, nodeNames, Date.now() - started, processes, removeDir, restartApiserver);
    const nodesNote = nodeNames.length > 0 ? ` with ${nodeNames.length} kwok nodes` : '';
    log(`[cluster] ${profile} control plane${nodesNote} ready in ${(plane.startupMs / 1000).toFixed(1)}s at ${server}`);
    return plane;
  } catch (error) {
    for (const proc of processes.reverse()) await proc.stop();
    removeDir();
    throw error;
  }
}

interface NodeComponentsContext {
  bin: Partial<Record<BinaryName, string>>;
  dir: string;
  kubeconfig: string;
  caFile: string;
  saKey: string;
  nodeCount: number;
  start: (binary: string, name: string, args: string[]) => ManagedProcess;
  processes: readonly ManagedProcess[];
  extraControllerManagerArgs: readonly string[];
}

/** The `full` profile's extras: controller-manager, scheduler, kwok, and kwok-managed Nodes that are Ready. */
async function startNodeComponents(ctx: NodeComponentsContext): Promise<string[]> {
  const { bin, dir, kubeconfig } = ctx;
  const need = (name: BinaryName) => {
    const path = bin[name];
    if (!path) throw new ControlPlaneSetupError(`${name} was not resolved`);
    return path;
  };
  ctx.start(need('kube-controller-manager'), 'kube-controller-manager', [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    // Each controller acts as its own ServiceAccount, as in a real cluster, so RBAC is exercised.
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${ctx.saKey}`,
    `--root-ca-file=${ctx.caFile}`,
    '--secure-port=0',
    ...ctx.extraControllerManagerArgs,
  ]);
  ctx.start(need('kube-scheduler'), 'kube-scheduler', [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--secure-port=0',
  ]);
  const kwokServerPort = await freePort();
  ctx.start(need('kwok'), 'kwok', [
    `--kubeconfig=${kubeconfig}`,
    // Explicit, so that a user's ~/.kwok/kwok.yaml cannot change the simulation.
    `--config=${await resolveKwokStages()}`,
    '--manage-all-nodes=false',
    `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION.key}=${KWOK_NODE_ANNOTATION.value}`,
    `--cidr=${KWOK_POD_CIDR}`,
    '--node-ip=127.0.0.1',
    `--server-address=127.0.0.1:${kwokServerPort}`,
  ]);

  const admin = new ClusterAccess(kubeconfig, dir).adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const nodeNames = await createKwokNodes(admin, ctx.nodeCount);
  await waitFor(
    `${ctx.nodeCount} kwok nodes to be Ready`,
    async () => {
      const nodes = await core.listNode();
      const ready = nodes.items.filter((node) =>
        node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length >= ctx.nodeCount;
    },
    ctx.processes,
  );
  // Pods need their namespace's `default` ServiceAccount; its controller creating one shows the controllers run.
  await waitFor(
    'the controller-manager to create the default ServiceAccount',
    async () => {
      await core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' });
      return true;
    },
    ctx.processes,
  );
  return nodeNames;
}
