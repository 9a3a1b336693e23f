import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The built controller CLI, as its Deployment runs it (`npm test` builds first). */
export const controllerCli = join(import.meta.dirname, '../../dist/controller/cli.js');

/**
 * One controller replica as a separate process with its config file and its own identity
 * (POD_NAME); its JSON log lines are kept for assertions and failure messages.
 */
export class ControllerProcess {
  readonly logLines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  private constructor(
    readonly podName: string,
    configFile: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [controllerCli, '--config', configFile], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', POD_NAME: podName, ...env },
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

  /** Writes `config` as YAML into `dir` and starts a replica named `podName` with it. */
  static start(dir: string, podName: string, config: object, env: Record<string, string> = {}): ControllerProcess {
    const file = join(dir, `${podName}.yaml`);
    writeFileSync(file, stringify(config));
    return new ControllerProcess(podName, file, env);
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

  /** Graceful stop (SIGTERM: the replica releases its lease). */
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
