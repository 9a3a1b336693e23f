import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ControlPlaneSetupError } from './binaries.js';
import type { NodeAddresses } from './nodeNetwork.js';
import { dieWithParent } from './parentDeathGuard.js';

const run = promisify(execFile);
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 30_000;

/** What the node's first process mounts before it becomes the namespaces' holder. */
export interface NodeMounts {
  /** Bound at /var/lib/containerd: containerd's root, on a real disk (overlayfs needs one). */
  containerdRoot: string;
  /** Size of the tmpfs at /var/lib/kubelet, small enough for a test to fill it. */
  kubeletRootMiB: number;
  /** A file bound over /proc/pressure/cpu, which a test rewrites to inject CPU pressure. */
  cpuPressure: string;
}

/**
 * The first process of the node, PID 1 of its namespaces (PID, mount, network, UTS), in shell.
 * Inside a private copy of the host's mounts it makes / rshared (the DaemonSet's
 * HostToContainer mount needs a shared source) and puts tmpfs over the places the kubelet,
 * containerd and CNI hard-code, so nothing they write reaches the host; then it becomes `pause`,
 * which reaps orphans and holds the namespaces until it is killed.
 */
const INIT_SCRIPT = `set -eu
mount --make-rshared /
mount -t tmpfs -o mode=0755 nodepulse-run /run
mount -t tmpfs -o mode=0755 nodepulse-var-lib /var/lib
mkdir -p /var/lib/kubelet /var/lib/containerd /var/lib/cni
mount -t tmpfs -o "mode=0755,size=$KUBELET_ROOT_MIB"m nodepulse-kubelet /var/lib/kubelet
mount --bind "$CONTAINERD_ROOT" /var/lib/containerd
mount -t tmpfs -o mode=0755 nodepulse-var-log /var/log
mount --bind "$CPU_PRESSURE" /proc/pressure/cpu
hostname "$NODE_NAME"
ip link set lo up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo ready
exec "$PAUSE"
`;

/** The host's PID of each process, with its parent and PID namespace. */
function processTable(): Array<{ pid: number; ppid: number; pidNamespace: string }> {
  const table = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.push({ pid, ppid, pidNamespace: readlinkSync(`/proc/${pid}/ns/pid`) });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

async function ip(args: string[], what: string): Promise<void> {
  try {
    await run('ip', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? String(error);
    throw new ControlPlaneSetupError(`the real node needs ${what}: ip ${args.join(' ')} failed: ${stderr}`);
  }
}

/**
 * The real node's namespaces, held by one process: its own PID namespace (killing its first
 * process kills every process of the node, pods included), a private mount namespace, a UTS
 * namespace named after the node, and a network namespace whose only links are loopback and a
 * veth to the host. It has no default route: the node reaches the host end of the veth and its
 * own pods, and every other address is unreachable (ENETUNREACH) by construction.
 */
export class NodeNamespaces {
  private stopping: Promise<void> | undefined;

  private constructor(
    /** The host's PID of the node's first process. */
    readonly initPid: number,
    private readonly holder: ChildProcess,
    /** The veth's host end (its node end is `eth0` inside). */
    readonly hostInterface: string,
    readonly addresses: NodeAddresses,
    /** `pid:[inode]` of the node's PID namespace, which outlives the first process's /proc entry. */
    private readonly pidNamespace: string,
  ) {}

  /** Starts the first process, then links it to the host with the veth and routes the pods' subnet to it. */
  static async create(options: { nodeName: string; addresses: NodeAddresses; mounts: NodeMounts; pause: string }): Promise<NodeNamespaces> {
    const { addresses, mounts } = options;
    const [command, args] = dieWithParent('unshare', [
      '--pid', '--fork', '--kill-child=SIGKILL', '--mount', '--mount-proc', '--propagation', 'private', '--net', '--uts',
      '--', '/bin/sh', '-c', INIT_SCRIPT,
    ]);
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      NODE_NAME: options.nodeName,
      CONTAINERD_ROOT: mounts.containerdRoot,
      KUBELET_ROOT_MIB: String(mounts.kubeletRootMiB),
      CPU_PRESSURE: mounts.cpuPressure,
      PAUSE: options.pause,
    };
    const holder = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    holder.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new ControlPlaneSetupError(`the node's first process did not start within ${START_TIMEOUT_MS / 1000}s: ${stderr}`)), START_TIMEOUT_MS);
      holder.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        if (chunk.includes('ready')) {
          clearTimeout(timer);
          ready();
        }
      });
      holder.on('error', (error) => fail(new ControlPlaneSetupError(`cannot run unshare (util-linux): ${error.message}`)));
      holder.on('exit', (code) => {
        clearTimeout(timer);
        fail(
          new ControlPlaneSetupError(
            `the real node needs PID, mount, network and UTS namespaces, tmpfs, bind mounts over /proc/pressure/cpu (PSI) and root; ` +
              `its first process exited with ${code}: ${stderr.trim()}`,
          ),
        );
      });
    });
    const initPid = processTable().find((p) => p.ppid === holder.pid)?.pid;
    if (!initPid) throw new ControlPlaneSetupError(`cannot find the node's first process (a child of unshare ${holder.pid})`);
    const namespaces = new NodeNamespaces(initPid, holder, `npn${process.pid}h`, addresses, readlinkSync(`/proc/${initPid}/ns/pid`));
    try {
      await namespaces.link();
    } catch (error) {
      await namespaces.stop();
      throw error;
    }
    return namespaces;
  }

  private async link(): Promise<void> {
    const { hostAddress, nodeAddress, linkPrefix, podSubnet } = this.addresses;
    await ip(['link', 'add', this.hostInterface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(this.initPid)], 'veth links (CONFIG_VETH)');
    await ip(['addr', 'add', `${hostAddress}/${linkPrefix}`, 'dev', this.hostInterface], 'an address on the veth');
    await ip(['link', 'set', this.hostInterface, 'up'], 'the veth up');
    await this.exec('ip', ['addr', 'add', `${nodeAddress}/${linkPrefix}`, 'dev', 'eth0']);
    await this.exec('ip', ['link', 'set', 'eth0', 'up']);
    // Replies to the pods: the host routes their subnet to the node (the route goes with the link).
    await ip(['route', 'add', podSubnet, 'via', nodeAddress, 'dev', this.hostInterface], 'a route to the pods');
    // The CNI bridge plugin needs bridges: say so now rather than at the first pod.
    try {
      await this.exec('ip', ['link', 'add', 'np-bridge-check', 'type', 'bridge']);
      await this.exec('ip', ['link', 'del', 'np-bridge-check']);
    } catch (error) {
      throw new ControlPlaneSetupError(`the real node's pods need bridges (CONFIG_BRIDGE): ${(error as Error).message}`);
    }
  }

  /** nsenter's arguments for running a command in every namespace of the node. */
  enter(command: string, args: readonly string[]): [string, string[]] {
    return ['nsenter', ['--target', String(this.initPid), '--mount', '--net', '--pid', '--uts', '--', command, ...args]];
  }

  /** Runs a command inside the node to completion; rejects with its stderr. */
  async exec(command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
    const [nsenter, nsenterArgs] = this.enter(command, args);
    try {
      const { stdout } = await run(nsenter, nsenterArgs, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim() ?? '';
      throw new Error(`${command} ${args.join(' ')} inside the node failed: ${stderr || (error as Error).message}`);
    }
  }

  /** A path of the node's own mount namespace, reached from the host. */
  path(inside: string): string {
    return `/proc/${this.initPid}/root${inside}`;
  }

  /** Host PIDs of every process of the node: in its PID namespace, or descended from one that is (containers, nested). */
  processes(): number[] {
    const table = processTable();
    const own = this.pidNamespace;
    const byPid = new Map(table.map((p) => [p.pid, p]));
    const inside = (pid: number, depth = 0): boolean => {
      const entry = byPid.get(pid);
      if (!entry || depth > 64) return false;
      return entry.pidNamespace === own || inside(entry.ppid, depth + 1);
    };
    return table.filter((p) => p.pid !== this.holder.pid && inside(p.pid)).map((p) => p.pid);
  }

  /** Takes the veth's host end down (or up again): the node is cut off from the host and the API server. */
  async setLink(up: boolean): Promise<void> {
    await ip(['link', 'set', this.hostInterface, up ? 'up' : 'down'], 'the veth to go down and up');
    if (up) {
      // Taking the link down dropped its routes; the pods' return route comes back with it.
      const { nodeAddress, podSubnet } = this.addresses;
      await ip(['route', 'replace', podSubnet, 'via', nodeAddress, 'dev', this.hostInterface], 'a route to the pods');
    }
  }

  /** Whether the veth's host end still exists. */
  async hostLinkExists(): Promise<boolean> {
    return run('ip', ['link', 'show', this.hostInterface]).then(
      () => true,
      () => false,
    );
  }

  /**
   * One kill of the first process ends the node: the kernel kills everything in its PID
   * namespace, the mount namespace and its tmpfs go with the last process, and the network
   * namespace (and so the veth) with it. Resolves once no process of the node is left and the
   * link is gone. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      try {
        process.kill(this.initPid, 'SIGKILL');
      } catch {
        // already gone
      }
      this.holder.kill('SIGKILL');
      while (this.processes().length > 0 || (await this.hostLinkExists())) {
        if (Date.now() > deadline) {
          throw new Error(`the node did not go away within ${STOP_TIMEOUT_MS / 1000}s: processes ${this.processes().join(', ') || 'none'}, link ${this.hostInterface}`);
        }
        await sleep(100);
      }
    })();
    return this.stopping;
  }
}
