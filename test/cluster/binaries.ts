import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The executables a test control plane can need, by their file name. */
export const BINARY_NAMES = [
  'kube-apiserver',
  'etcd',
  'kubectl',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
  'kubelet',
] as const;
export type BinaryName = (typeof BINARY_NAMES)[number];
export type Binaries = Record<BinaryName, string>;

/** Environment variable that overrides each binary (same names as the build script documents). */
const ENV_VAR: Record<BinaryName, string> = {
  'kube-apiserver': 'KUBE_APISERVER',
  etcd: 'ETCD',
  kubectl: 'KUBECTL',
  'kube-controller-manager': 'KUBE_CONTROLLER_MANAGER',
  'kube-scheduler': 'KUBE_SCHEDULER',
  kwok: 'KWOK',
  kubelet: 'KUBELET',
};

const BUILD_SCRIPT = 'scripts/control-plane-binaries.sh';

/** The control plane cannot start for a reason a person fixes by installing or pointing at something. */
export class ControlPlaneSetupError extends Error {
  override name = 'ControlPlaneSetupError';
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The checkout's root: the nearest folder above this file holding the build script (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, BUILD_SCRIPT))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new ControlPlaneSetupError(`cannot find ${BUILD_SCRIPT} above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
  return dir;
}

/** A binary named by its environment variable or found in KUBEBUILDER_ASSETS; undefined when neither applies. */
function userProvided(name: BinaryName, env: NodeJS.ProcessEnv): string | undefined {
  const variable = ENV_VAR[name];
  const fromVar = env[variable];
  if (fromVar) {
    if (!isExecutableFile(fromVar)) {
      throw new ControlPlaneSetupError(
        `${variable}=${fromVar} is not an executable file; point it at a ${name} binary or unset it`,
      );
    }
    return resolve(fromVar);
  }
  const assets = env.KUBEBUILDER_ASSETS;
  if (assets) {
    const candidate = join(assets, name);
    if (isExecutableFile(candidate)) return resolve(candidate);
  }
  return undefined;
}

let cachedBinDirOnce: Promise<string> | undefined;

/** Runs the build script (once per process), which builds only what its versioned cache lacks; returns the cache folder. */
function cachedBinDir(env: NodeJS.ProcessEnv): Promise<string> {
  cachedBinDirOnce ??= runBuildScript(env);
  return cachedBinDirOnce;
}

async function runBuildScript(env: NodeJS.ProcessEnv): Promise<string> {
  const script = join(repoRoot(), BUILD_SCRIPT);
  // Progress and errors of a (possibly long) cold build go straight to the user's terminal.
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const exitCode = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  }).catch((error: unknown) => {
    throw new ControlPlaneSetupError(
      `cannot run ${script} with bash (${String(error)}); install bash, or set KUBEBUILDER_ASSETS`,
    );
  });
  const binDir = stdout.trim().split('\n').at(-1) ?? '';
  if (exitCode !== 0 || binDir === '') {
    throw new ControlPlaneSetupError(
      `${BUILD_SCRIPT} could not provide the control plane binaries (exit code ${exitCode}; its message is above). ` +
        'Install Go 1.26+ so it can build them, or set KUBEBUILDER_ASSETS to an envtest assets folder ' +
        `(kube-apiserver, etcd, kubectl), or set ${Object.values(ENV_VAR).join(' / ')} to existing binaries.`,
    );
  }
  return binDir;
}

const resolved = new Map<BinaryName, string>();

/**
 * Finds each wanted binary: its environment variable first, then KUBEBUILDER_ASSETS, then the
 * versioned build cache (built on first use). Results are remembered for the process.
 */
export async function resolveBinaries<N extends BinaryName>(
  wanted: readonly N[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Pick<Binaries, N>> {
  const missing: N[] = [];
  for (const name of wanted) {
    if (resolved.has(name)) continue;
    const path = userProvided(name, env);
    if (path) resolved.set(name, path);
    else missing.push(name);
  }
  if (missing.length > 0) {
    const dir = await cachedBinDir(env);
    for (const name of missing) {
      const path = join(dir, name);
      if (!isExecutableFile(path)) {
        throw new ControlPlaneSetupError(
          `${path} is missing after the build script ran; delete ${dir} and run ${BUILD_SCRIPT} again`,
        );
      }
      resolved.set(name, path);
    }
  }
  return Object.fromEntries(wanted.map((name) => [name, resolved.get(name)])) as Pick<Binaries, N>;
}

/**
 * kwok's simulation stages (without them kwok exits): the file named by KWOK_STAGES, else the
 * default "fast" set that the build script renders from the pinned kwok module into its cache.
 */
export async function resolveKwokStages(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromVar = env.KWOK_STAGES;
  if (fromVar) {
    if (!existsSync(fromVar) || !statSync(fromVar).isFile()) {
      throw new ControlPlaneSetupError(`KWOK_STAGES=${fromVar} is not a file; point it at a kwok Stage YAML or unset it`);
    }
    return resolve(fromVar);
  }
  const path = join(await cachedBinDir(env), 'kwok-stages.yaml');
  if (!existsSync(path)) {
    throw new ControlPlaneSetupError(`${path} is missing after the build script ran; run ${BUILD_SCRIPT} again`);
  }
  return path;
}
