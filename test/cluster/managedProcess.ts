import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { onExitCleanup } from './exitCleanup.js';
import { dieWithParent } from './parentDeathGuard.js';

const STOP_GRACE_MS = 5_000;

/** A long-running child (etcd, kube-apiserver, ...) whose output goes to a log file. */
export class ManagedProcess {
  readonly name: string;
  /** Resolves with the exit code (null when killed by a signal or never started). */
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private exitCode: number | null | undefined;
  private startError = '';

  constructor(
    binary: string,
    args: readonly string[],
    readonly logFile: string,
    /** What messages call it; default the binary's file name (a wrapper such as nsenter names the program it runs). */
    name: string = basename(binary),
  ) {
    this.name = name;
    const log = openSync(logFile, 'a');
    try {
      const [command, commandArgs] = dieWithParent(binary, args);
      this.child = spawn(command, commandArgs, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    const unregister = onExitCleanup(() => this.killNow());
    this.exited = new Promise((done) => {
      this.child.on('error', (error) => {
        this.startError = `cannot start ${binary}: ${error.message}`;
        this.exitCode = null;
        unregister();
        done(null);
      });
      this.child.on('exit', (code) => {
        this.exitCode = code;
        unregister();
        done(code);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last lines of its log, for an error message when it died or never became ready. */
  logTail(lines = 25): string {
    let text = '';
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      // no log yet: the start error (if any) says why
    }
    const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
    return [this.startError, tail].filter(Boolean).join('\n');
  }

  /** Sends it a signal while it runs (SIGSTOP / SIGCONT freeze and thaw it for its clients' tests). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killNow(), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
