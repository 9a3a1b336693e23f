import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The built agent CLI, as the DaemonSet runs it (`npm test` builds first). */
export const agentCli = join(import.meta.dirname, '../../dist/agent/cli.js');

/** A free TCP port on 127.0.0.1 (released at once; the agent binds it a moment later). */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => server.once('error', fail).listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === 'string') throw new Error('no loopback port');
  return address.port;
}

/**
 * The agent running as a separate process with a config file, as it runs on a node; its JSON
 * log lines are kept for assertions and for failure messages.
 */
export class AgentProcess {
  readonly logLines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  private constructor(configFile: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [agentCli, '--config', configFile], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) this.logLines.push(line);
      if (this.logLines.length > 2000) this.logLines.splice(0, this.logLines.length - 2000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((done) => this.child.on('exit', (code) => done(code)));
  }

  /** Writes `config` as YAML next to the other test files and starts the agent with it. */
  static start(dir: string, name: string, config: object, env: Record<string, string> = {}): AgentProcess {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify(config));
    return new AgentProcess(file, env);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  logTail(lines = 30): string {
    return this.logLines.slice(-lines).join('\n');
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls until `check` returns a value (not undefined), or fails with `what` and the agent's log. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, agent?: AgentProcess): Promise<T> {
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
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${cause}${agent ? `\nagent log:\n${agent.logTail()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
