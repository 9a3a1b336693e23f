import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The built CLIs, as the DaemonSet and the Deployment run them (`npm test` builds first). */
export const agentCli = join(import.meta.dirname, '../../dist/agent/cli.js');
export const controllerCli = join(import.meta.dirname, '../../dist/controller/cli.js');

/**
 * One of our commands running as a separate process with a config file, as it runs in its
 * pod; its JSON log lines are kept for assertions and for failure messages.
 */
export class CliProcess {
  readonly logLines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(
    /** A name for failure messages (the pod it plays). */
    readonly name: string,
    cli: string,
    configFile: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [cli, '--config', configFile], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) this.logLines.push(line);
      if (this.logLines.length > 5000) this.logLines.splice(0, this.logLines.length - 5000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((done) => this.child.on('exit', (code) => done(code)));
  }

  /** Writes `config` as YAML into `dir` and starts `cli` with it. */
  static start(cli: string, dir: string, name: string, config: object, env: Record<string, string> = {}): CliProcess {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify(config));
    return new CliProcess(name, cli, file, env);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Log records (parsed JSON lines) whose msg matches. */
  logged(msg: string): Array<Record<string, unknown>> {
    return this.logLines.flatMap((line) => {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        return record.msg === msg ? [record] : [];
      } catch {
        return [];
      }
    });
  }

  logTail(lines = 40): string {
    return this.logLines.slice(-lines).join('\n');
  }

  /** Graceful stop (SIGTERM), then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Dies on the spot, the way a node loss or OOM kill ends a pod: no release, no cleanup. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Polls until `check` returns a value (not undefined), or fails saying what it waited for,
 * the last error, and the logs of the processes involved.
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  involved: CliProcess | readonly CliProcess[] = [],
  pollMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      const logs = (Array.isArray(involved) ? involved : [involved]).map((p: CliProcess) => `\n--- ${p.name}:\n${p.logTail()}`).join('');
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${cause}${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
