import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** A process under measurement: output goes to a log file (no pipes back into the bench). */
export class BenchProcess {
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logPath: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? null : 0))));
  }

  static start(name: string, command: string, args: string[], options: { logPath: string; env?: NodeJS.ProcessEnv; cwd?: string }): BenchProcess {
    const log = openSync(options.logPath, 'w');
    try {
      const child = spawn(command, args, { stdio: ['ignore', log, log], env: options.env ?? process.env, cwd: options.cwd });
      if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
      return new BenchProcess(name, child, options.logPath);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines of its log, for an error message. */
  logTail(lines = 20): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
