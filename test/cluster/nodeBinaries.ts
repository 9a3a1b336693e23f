import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ControlPlaneSetupError, repoRoot, resolveBinaries } from './binaries.js';

/** What the real node runs: the kubelet (from the control plane's build) and the node build's cache. */
export interface NodeBinaries {
  kubelet: string;
  containerd: string;
  ctr: string;
  /** containerd-shim-runc-v2 lives beside containerd, where containerd looks for it first. */
  binDir: string;
  /** The CNI plugins loopback, bridge and host-local. */
  cniBinDir: string;
  runc: string;
  /** The pause binary: the node's first process and the pods' sandbox. */
  pause: string;
  /** The pause image as an OCI archive, and the name it is imported under. */
  pauseArchive: string;
  pauseImage: string;
}

/** Runs one of the build scripts, its progress to stderr; resolves with the last line it prints. */
export async function runScript(script: string, args: readonly string[] = []): Promise<string> {
  const path = join(repoRoot(), script);
  const child = spawn('bash', [path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const exitCode = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  if (exitCode !== 0 || last === '') throw new ControlPlaneSetupError(`${script} failed (exit code ${exitCode}; its message is above)`);
  return last;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  return undefined;
}

/** The host tools the node needs, or one error naming every one that is missing and how to get it. */
export function requireHostTools(): { runc: string } {
  const tools: Record<string, string> = { runc: 'runc', unshare: 'util-linux', nsenter: 'util-linux', mount: 'mount', ip: 'iproute2', openssl: 'openssl' };
  const missing = Object.entries(tools).filter(([tool]) => !onPath(tool));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
    throw new ControlPlaneSetupError(`the real node needs ${missing.map(([tool]) => tool).join(', ')} on the PATH (Debian: apt-get install ${packages})`);
  }
  return { runc: onPath('runc') as string };
}

export async function resolveNodeBinaries(): Promise<NodeBinaries> {
  const { runc } = requireHostTools();
  const [{ kubelet }, dir] = await Promise.all([resolveBinaries(['kubelet']), runScript('scripts/node-binaries.sh')]);
  const pauseRef = join(dir, 'pause.ref');
  if (!existsSync(pauseRef)) throw new ControlPlaneSetupError(`${pauseRef} is missing; delete ${dir} and run scripts/node-binaries.sh again`);
  return {
    kubelet,
    containerd: join(dir, 'containerd'),
    ctr: join(dir, 'ctr'),
    binDir: dir,
    cniBinDir: dir,
    runc,
    pause: join(dir, 'pause'),
    pauseArchive: join(dir, 'pause.oci.tar'),
    pauseImage: readFileSync(pauseRef, 'utf8').trim(),
  };
}

/** Builds the project's image from its Dockerfile (scripts/node-image.sh) into `archive`; resolves with its reference. */
export function buildNodeImage(archive: string): Promise<string> {
  return runScript('scripts/node-image.sh', [archive]);
}
