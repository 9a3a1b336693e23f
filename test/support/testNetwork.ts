import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

const namespacePrefix = 'nodepulse-test-';
/** Networks made by this process so far: each gets its own block and names. */
let created = 0;

/**
 * A veth link into a network namespace the test creates: the root side carries `hostAddress`
 * (a global-unicast test address, which the API server's pod proxy accepts where it refuses
 * loopback), the namespace side `peerAddress`. Both are in 198.18.0.0/15, the range RFC 2544
 * sets aside for tests, on a /29 of this run's own (from its pid) that exists only on this
 * link: nothing leaves the machine, and concurrent runs do not share addresses.
 */
export class TestNetwork {
  readonly namespace: string;
  readonly hostAddress: string;
  readonly peerAddress: string;
  readonly prefix = 29;
  private readonly hostIf: string;
  private readonly peerIf: string;

  constructor() {
    const n = created++;
    const block = (process.pid * 8 + n) % 16384;
    const base = 198 * 2 ** 24 + 18 * 2 ** 16 + block * 8;
    const dotted = (address: number) => [24, 16, 8, 0].map((shift) => (address >>> shift) & 255).join('.');
    this.hostAddress = dotted(base + 1);
    this.peerAddress = dotted(base + 2);
    this.namespace = `${namespacePrefix}${process.pid}-${n}`;
    this.hostIf = `np${process.pid}${n}h`;
    this.peerIf = `np${process.pid}${n}n`;
  }

  create(): void {
    removeLeftovers();
    this.destroy();
    ip(['netns', 'add', this.namespace]);
    ip(['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.peerIf, 'netns', this.namespace]);
    ip(['addr', 'add', `${this.hostAddress}/${this.prefix}`, 'dev', this.hostIf]);
    ip(['link', 'set', this.hostIf, 'up']);
    ip(['-n', this.namespace, 'addr', 'add', `${this.peerAddress}/${this.prefix}`, 'dev', this.peerIf]);
    ip(['-n', this.namespace, 'link', 'set', this.peerIf, 'up']);
    ip(['-n', this.namespace, 'link', 'set', 'lo', 'up']);
  }

  /** Runs a command inside the namespace (a test host on the far side of the link). */
  spawnInside(command: string, args: string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.namespace, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  destroy(): void {
    try {
      ip(['link', 'del', this.hostIf]);
    } catch {
      // not there: nothing to remove
    }
    try {
      ip(['netns', 'del', this.namespace]);
    } catch {
      // not there: nothing to remove
    }
  }
}

/** Namespaces (and their links) of earlier runs whose process is gone: a killed run leaves them. */
function removeLeftovers(): void {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((line) => line.split(' ')[0] ?? '');
  for (const name of names) {
    if (!name.startsWith(namespacePrefix)) continue;
    const [pid, n] = name.slice(namespacePrefix.length).split('-').map(Number);
    if (!Number.isInteger(pid) || !Number.isInteger(n) || processAlive(pid as number)) continue;
    for (const args of [['link', 'del', `np${pid}${n}h`], ['netns', 'del', name]]) {
      try {
        ip(args);
      } catch {
        // already gone
      }
    }
  }
}

/** Whether a process of that id still exists (signal 0 checks without sending). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message} (these tests need root and iproute2)`);
  }
}
