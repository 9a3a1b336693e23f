import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Socket } from 'node:net';
import { delimiter, join } from 'node:path';

/*
 * Exit hooks do not run when this process is SIGKILLed, as test runners do to workers they
 * give up on; without these guards etcd and kube-apiserver would outlive the run, holding
 * ports, memory and ~120 MB of temporary files each.
 */

/** util-linux's setpriv (sets the parent-death signal, then execs), when this is Linux and it is installed. */
function findSetpriv(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'setpriv');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  return undefined;
}

const setpriv = findSetpriv();

/**
 * The command line that runs `binary args` with the kernel sending it SIGKILL when this
 * process dies, however it dies. Without setpriv it is the plain command (exit hooks only).
 */
export function dieWithParent(binary: string, args: readonly string[]): [string, string[]] {
  return setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, [...args]];
}

/**
 * Starts a watchdog shell that removes `dir` once its stdin (a pipe from this process) closes:
 * the kernel closes it when this process dies, and the returned function closes it on an
 * orderly stop. It ignores Ctrl-C so that it outlives whatever the terminal interrupts.
 */
export function removeWhenParentDies(dir: string): () => void {
  const script = 'trap "" INT TERM HUP; while read -r _; do :; done; rm -rf -- "$0"';
  const watchdog = spawn('/bin/sh', ['-c', script, dir], { stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.on('error', () => {
    // no /bin/sh: the exit hooks remain the only clean-up
  });
  // The watchdog must never keep this process alive.
  watchdog.unref();
  (watchdog.stdin as unknown as Socket).unref();
  return () => watchdog.stdin.end();
}
