import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

/**
 * A veth link into a network namespace the test creates: the root side carries `hostAddress`
 * (a global-unicast test address, which the API server's pod proxy accepts where it refuses
 * loopback), the namespace side `peerAddress`. Both are in 198.18.0.0/15, the range RFC 2544
 * sets aside for tests, on a /29 that exists only on this link: nothing leaves the machine.
 */
export class TestNetwork {
  readonly namespace: string;
  private readonly hostIf: string;
  private readonly peerIf: string;

  constructor(
    readonly hostAddress = '198.18.0.1',
    readonly peerAddress = '198.18.0.2',
    readonly prefix = 29,
  ) {
    const id = `${process.pid % 100000}`;
    this.namespace = `nodepulse-test-${id}`;
    this.hostIf = `np${id}h`;
    this.peerIf = `np${id}n`;
  }

  create(): void {
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

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message} (these tests need root and iproute2)`);
  }
}
