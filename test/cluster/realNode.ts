import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ControlPlaneSetupError, repoRoot } from './binaries.js';
import { ManagedProcess } from './managedProcess.js';
import { type NodeBinaries, resolveNodeBinaries } from './nodeBinaries.js';
import { NodeCgroups } from './nodeCgroups.js';
import { CONTAINERD_SOCKET, cniConfig, containerdConfig, kubeletConfig, kubeletKubeconfig } from './nodeConfig.js';
import { NodeNamespaces } from './nodeNamespaces.js';
import { type NodeAddresses, nodeAddresses } from './nodeNetwork.js';
import { type NodePki, createNodePki } from './nodePki.js';
import { runDir } from './runDir.js';

const READY_TIMEOUT_MS = 120_000;
const POLL_MS = 500;
/** The kubelet's root tmpfs: small, so a test can fill it past the agent's threshold cheaply. */
const KUBELET_ROOT_MIB = 256;
/** What /proc/pressure/cpu says until a test injects pressure: no stall. */
export const CALM_CPU_PRESSURE = 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';

/** The name an OCI archive's one image is imported under (its index's name annotation, as ctr reads it). */
function imageNameOf(archive: string): string {
  const index = JSON.parse(execFileSync('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' })) as {
    manifests?: Array<{ annotations?: Record<string, string> }>;
  };
  const annotations = index.manifests?.[0]?.annotations ?? {};
  const name = annotations['io.containerd.image.name'] ?? annotations['org.opencontainers.image.ref.name'];
  if (!name?.includes('/')) throw new ControlPlaneSetupError(`${archive} names no image in its index.json (${JSON.stringify(annotations)})`);
  return name;
}

/** Kernel features the node needs that a file shows; each missing one is named with its fix. */
function requireKernelFeatures(): void {
  const missing: string[] = [];
  if (!readFileSync('/proc/filesystems', 'utf8').includes('\toverlay\n')) missing.push('the overlay filesystem (CONFIG_OVERLAY_FS; modprobe overlay)');
  if (!existsSync('/proc/pressure/cpu')) missing.push('pressure stall information, /proc/pressure (CONFIG_PSI; psi=1 on the kernel command line)');
  if (!existsSync('/proc/self/ns/pid') || !existsSync('/proc/self/ns/net')) missing.push('PID and network namespaces (CONFIG_PID_NS, CONFIG_NET_NS)');
  if (process.getuid?.() !== 0) missing.push('root (namespaces, mounts, links and cgroups)');
  if (missing.length > 0) throw new ControlPlaneSetupError(`the real node cannot start on this machine; it needs ${missing.join('; ')}`);
}

/**
 * A real Kubernetes node for the tests: containerd and the kubelet in namespaces of their own
 * (nodeNamespaces.ts), joined to a control plane that listens on the host end of the node's veth.
 * Its pods run the images imported into its containerd. stop() leaves nothing behind: no
 * process, mount, link, cgroup or file.
 */
export class RealNode {
  private kubelet: ManagedProcess | undefined;
  private readonly processes: ManagedProcess[] = [];
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    /** The node's folder: configs, logs, containerd's root, the CPU pressure file. */
    readonly dir: string,
    readonly binaries: NodeBinaries,
    readonly namespaces: NodeNamespaces,
    readonly cgroups: NodeCgroups,
    readonly pki: NodePki,
    private readonly removeDir: () => void,
  ) {}

  get addresses(): NodeAddresses {
    return this.namespaces.addresses;
  }

  /** The file bound over the node's /proc/pressure/cpu; write PSI lines to it to inject pressure. */
  get cpuPressureFile(): string {
    return join(this.dir, 'cpu-pressure');
  }

  get kubeletLog(): string {
    return join(this.dir, 'kubelet.log');
  }

  get containerdLog(): string {
    return join(this.dir, 'containerd.log');
  }

  /** kube-apiserver flags the node needs: trust its kubelet's client certificate, and authenticate to the kubelet. */
  apiserverArgs(): string[] {
    return [
      `--client-ca-file=${this.pki.caFile}`,
      `--kubelet-client-certificate=${this.pki.apiserverToKubelet.cert}`,
      `--kubelet-client-key=${this.pki.apiserverToKubelet.key}`,
      '--kubelet-preferred-address-types=InternalIP',
    ];
  }

  /**
   * Everything that needs no API server: checks, binaries, the namespaces and veth, the cgroup
   * root, certificates, and containerd running with the pause image imported.
   */
  static async prepare(options: { name: string; log?: (line: string) => void }): Promise<RealNode> {
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    requireKernelFeatures();
    const binaries = await resolveNodeBinaries();
    const { dir, remove: removeDir } = runDir(`nodepulse-node-${process.pid}-`);
    const cgroups = new NodeCgroups();
    let namespaces: NodeNamespaces | undefined;
    try {
      cgroups.create();
      mkdirSync(join(dir, 'containerd-root'));
      writeFileSync(join(dir, 'cpu-pressure'), CALM_CPU_PRESSURE);
      namespaces = await NodeNamespaces.create({
        nodeName: options.name,
        addresses: nodeAddresses(),
        mounts: { containerdRoot: join(dir, 'containerd-root'), kubeletRootMiB: KUBELET_ROOT_MIB, cpuPressure: join(dir, 'cpu-pressure') },
        pause: binaries.pause,
      });
      const pki = await createNodePki(join(dir, 'pki'), options.name);
      const node = new RealNode(options.name, dir, binaries, namespaces, cgroups, pki, removeDir);
      await node.startContainerd();
      log(`real node ${options.name}: containerd ready, node address ${namespaces.addresses.nodeAddress}`);
      return node;
    } catch (error) {
      await namespaces?.stop().catch(() => undefined);
      await cgroups.remove().catch(() => undefined);
      removeDir();
      throw error;
    }
  }

  private start(name: string, binary: string, args: string[]): ManagedProcess {
    const [nsenter, nsenterArgs] = this.namespaces.enter(binary, args);
    const proc = new ManagedProcess(nsenter, nsenterArgs, join(this.dir, `${name}.log`), name);
    this.processes.push(proc);
    return proc;
  }

  private async startContainerd(): Promise<void> {
    const { binaries, dir } = this;
    mkdirSync(join(dir, 'cni'));
    mkdirSync(join(dir, 'opt'));
    writeFileSync(join(dir, 'cni', '10-nodepulse.conflist'), cniConfig(this.addresses));
    writeFileSync(
      join(dir, 'containerd.toml'),
      containerdConfig({ runc: binaries.runc, cniBinDir: binaries.cniBinDir, cniConfDir: join(dir, 'cni'), optDir: join(dir, 'opt'), pauseImage: binaries.pauseImage }),
    );
    // The shim is found beside containerd on its PATH.
    const containerd = this.start('containerd', 'env', [`PATH=${binaries.binDir}:${process.env.PATH ?? ''}`, binaries.containerd, '--config', join(dir, 'containerd.toml')]);
    await this.waitFor('containerd to answer', async () => {
      await this.ctr(['version'], 5_000);
      return true;
    }, [containerd]);
    await this.importImage(binaries.pauseArchive, []);
  }

  /** Runs ctr against the node's containerd (images for Kubernetes live in its k8s.io namespace). */
  ctr(args: readonly string[], timeoutMs = 300_000): Promise<string> {
    return this.namespaces.exec(this.binaries.ctr, ['--address', CONTAINERD_SOCKET, '--namespace', 'k8s.io', ...args], timeoutMs);
  }

  /** Imports an OCI archive into the node's containerd and tags the image it holds with each name. */
  async importImage(archive: string, names: readonly string[]): Promise<void> {
    await this.ctr(['images', 'import', archive]);
    const source = imageNameOf(archive);
    for (const name of names) await this.ctr(['images', 'tag', '--force', source, name]);
  }

  /** Starts the kubelet against the control plane and waits until its Node is Ready. */
  async join(plane: { server: string; caFile: string; admin: KubeConfig }): Promise<void> {
    const { dir } = this;
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    writeFileSync(join(dir, 'kubelet.yaml'), kubeletConfig({ cgroupRoot: this.cgroups.root, pki: this.pki, resolvConf: join(dir, 'resolv.conf') }));
    writeFileSync(join(dir, 'kubelet.kubeconfig'), kubeletKubeconfig({ server: plane.server, serverCaFile: plane.caFile, pki: this.pki, nodeName: this.name }), { mode: 0o600 });
    this.kubelet = this.start('kubelet', this.binaries.kubelet, [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${join(dir, 'kubelet.kubeconfig')}`,
      `--hostname-override=${this.name}`,
      `--node-ip=${this.addresses.nodeAddress}`,
      '--v=2',
    ]);
    const core = plane.admin.makeApiClient(CoreV1Api);
    await this.waitFor(`node ${this.name} to be Ready`, async () => {
      const node = await core.readNode({ name: this.name });
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    }, this.processes);
  }

  /** Polls `check`, failing early with a component's log when it died, or with every log at the deadline. */
  private async waitFor(what: string, check: () => Promise<boolean>, watched: readonly ManagedProcess[]): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const dead = watched.find((proc) => !proc.running);
      if (dead) throw new ControlPlaneSetupError(`${dead.name} exited while waiting for ${what}:\n${dead.logTail(40)}`);
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) {
        const logs = watched.map((proc) => `--- ${proc.name} (${proc.logFile})\n${proc.logTail(20)}`).join('\n');
        throw new ControlPlaneSetupError(`timed out after ${READY_TIMEOUT_MS / 1000}s waiting for ${what}\n${logs}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Starts a long-running command inside the node (all its namespaces); its output is piped. */
  spawnInside(command: string, args: readonly string[]): ChildProcess {
    const [nsenter, nsenterArgs] = this.namespaces.enter(command, args);
    return spawn(nsenter, nsenterArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /**
   * The tests' DNS server on the node's 127.0.0.1:53 (what its resolv.conf names); resolves
   * with a function that switches its mode and waits for the acknowledgement.
   */
  async startDnsServer(): Promise<{ setMode: (mode: string) => Promise<void>; stop: () => void }> {
    const script = join(repoRoot(), 'dist', 'test', 'cluster', 'nodeDnsServer.js');
    if (!existsSync(script)) throw new ControlPlaneSetupError(`${script} is missing: run npm run build first`);
    const child = this.spawnInside(process.execPath, [script]);
    let output = '';
    const waitFor = (text: string) =>
      new Promise<void>((done, fail) => {
        const check = () => output.includes(text) && done();
        child.stdout?.on('data', check);
        child.once('exit', (code) => fail(new Error(`the node's DNS server exited (${code}): ${output}`)));
        check();
      });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await waitFor('ready\n');
    return {
      setMode: async (mode: string) => {
        child.stdin?.write(`${mode}\n`);
        await waitFor(`mode ${mode}\n`);
      },
      stop: () => child.kill('SIGKILL'),
    };
  }

  /**
   * Kills the node's first process (and so every process of the node, pods included), then
   * removes its cgroups and its folder. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.namespaces.stop();
      await Promise.all(this.processes.map((proc) => proc.exited));
      await this.cgroups.remove();
      this.removeDir();
    })();
    return this.stopping;
  }
}
