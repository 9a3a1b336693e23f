import { spawn } from 'node:child_process';
import { resolveBinaries } from './binaries.js';

export interface KubectlOptions {
  /** Kubeconfig of the identity to act as. */
  kubeconfig: string;
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Kill kubectl after this long; defaults to 120 s. */
  timeoutMs?: number;
}

/** kubectl exited non-zero: carries its exit code and stderr so a test can assert on the refusal. */
export class KubectlError extends Error {
  override name = 'KubectlError';
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`kubectl ${args.join(' ')} exited with ${exitCode ?? 'a signal'}: ${stderr.trim()}`);
  }
}

/** Runs the real kubectl binary as a subprocess; resolves with its stdout, rejects with KubectlError. */
export async function kubectl(args: readonly string[], options: KubectlOptions): Promise<string> {
  const { kubectl: binary } = await resolveBinaries(['kubectl']);
  // Only our kubeconfig: no user-wide config, cache or plugins may leak in.
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', KUBECONFIG: options.kubeconfig };
  const child = spawn(binary, ['--kubeconfig', options.kubeconfig, ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 120_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input ?? '');
  const exitCode = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  if (exitCode !== 0) throw new KubectlError(args, exitCode, stderr);
  return stdout;
}
