import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { setDeadline } from '../../common/deadline.js';
import type { Logger } from '../../common/log.js';
import type { ConditionRule } from '../conditions/conditionEngine.js';
import type { ProbeResult } from '../probes/probe.js';
import type { Monitor, MonitorSink } from './monitor.js';
import type { PluginRule, PluginSet } from './pluginFile.js';

/**
 * NPD reads this much of a plugin's stdout and of its stderr and drains the rest
 * (pkg/custompluginmonitor/plugin/plugin.go, maxCustomPluginBufferBytes). The message is then
 * trimmed and cut to max_output_length, so leading blank lines do not use up the message.
 */
export const outputReadBytes = 4096;

/**
 * Past this much output the agent stops reading (the plugin then blocks on a full pipe until its
 * timeout). NPD drains without end; in Node every read of a pipe is a fresh 64 KiB buffer freed
 * only at the next GC, and draining 100 MB grew the agent's RSS by 34 MiB (measured, with the
 * DaemonSet's V8 flags). Up to here a plugin runs to its own exit status, as in NPD.
 */
export const drainBytes = 1024 * 1024;

/** NPD's plugin protocol: exit 0 OK, 1 NonOK (the problem), anything else Unknown (plugin.go). */
export type PluginStatus = 'ok' | 'problem' | 'unknown';

export interface PluginRun {
  status: PluginStatus;
  /** Stdout trimmed and cut to max_output_length (or what went wrong), as NPD's message. */
  message: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Bytes the plugin wrote to stdout, and how many of them the agent kept. */
  stdoutBytes: number;
  keptBytes: number;
  /** The start of stderr, for the log (NPD logs it too). */
  stderr: string;
  durationMs: number;
}

export interface PluginRunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  maxOutputLength: number;
}

/** The first `limit` bytes of a stream; the rest read and dropped up to drainBytes, then no more read. */
class CappedOutput {
  private readonly kept: Buffer;
  private length = 0;
  seen = 0;

  constructor(
    private readonly stream: Readable,
    limit: number,
  ) {
    this.kept = Buffer.alloc(limit);
    stream.on('data', (chunk: Buffer) => {
      this.seen += chunk.length;
      if (this.length < limit) this.length += chunk.copy(this.kept, this.length, 0, limit - this.length);
      if (this.seen >= drainBytes) stream.pause();
    });
  }

  /** Stopped reading: what is left in the pipe will not be read. */
  get full(): boolean {
    return this.seen >= drainBytes;
  }

  /** The plugin has exited: a stream no longer read will not end by itself. */
  closeIfFull(): void {
    if (this.full) this.stream.destroy();
  }

  get keptBytes(): number {
    return this.length;
  }

  text(): string {
    return this.kept.subarray(0, this.length).toString('utf8');
  }
}

/** Cut to `max` bytes of UTF-8, never inside a character (Go slices the bytes as they come). */
export function cutBytes(text: string, max: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already; EPERM (a setuid plugin): the pipes are closed below all the same.
  }
}

/**
 * Runs one plugin as NPD does (plugin.go run, util.Exec): the file itself with its args, no
 * shell, stdin /dev/null, in a process group of its own (NPD sets Setpgid; `detached` here is
 * setsid, which makes one too) so that its timeout kills the group with SIGKILL, children and
 * all. The result comes when stdout and stderr close, so a child still holding them keeps the
 * run going until the timeout, as in NPD. `abort` kills the group at once (the agent stops).
 */
export function runPlugin(rule: PluginRule, options: PluginRunOptions, abort?: AbortSignal): Promise<PluginRun> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(rule.command, rule.args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // What spawn refuses before starting anything (a NUL byte in an argument, say).
      resolve({ status: 'unknown', message: cutBytes(`cannot run ${rule.path}: ${(err as Error).message}`, options.maxOutputLength), exitCode: null, signal: null, timedOut: false, stdoutBytes: 0, keptBytes: 0, stderr: '', durationMs: 0 });
      return;
    }
    const stdout = new CappedOutput(child.stdout, outputReadBytes);
    const stderr = new CappedOutput(child.stderr, outputReadBytes);
    let timedOut = false;
    let settled = false;
    const kill = () => {
      killGroup(child.pid);
      // A process outside the group (one that called setsid) may still hold the pipes.
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const deadline = setDeadline(() => {
      timedOut = true;
      kill();
    }, rule.timeoutMs);
    abort?.addEventListener('abort', kill, { once: true });
    const settle = (run: Omit<PluginRun, 'stdoutBytes' | 'keptBytes' | 'stderr' | 'durationMs' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      deadline.clear();
      abort?.removeEventListener('abort', kill);
      resolve({ ...run, message: cutBytes(run.message, options.maxOutputLength), timedOut, stdoutBytes: stdout.seen, keptBytes: stdout.keptBytes, stderr: stderr.text().trim(), durationMs: Date.now() - startedAt });
    };
    child.on('exit', () => {
      stdout.closeIfFull();
      stderr.closeIfFull();
    });
    child.on('error', (err) => settle({ status: 'unknown', message: `cannot run ${rule.path}: ${err.message}`, exitCode: null, signal: null }));
    child.on('close', (exitCode, signal) => {
      const output = stdout.text().trim();
      if (timedOut) {
        const seconds = rule.timeoutMs / 1000;
        const flood = stdout.full || stderr.full ? `, output past ${drainBytes / 1024 / 1024} MiB unread` : '';
        settle({ status: 'unknown', message: `timed out after ${seconds}s, process group killed${flood}; output: ${JSON.stringify(output)}`, exitCode, signal });
        return;
      }
      const status: PluginStatus = exitCode === 0 ? 'ok' : exitCode === 1 ? 'problem' : 'unknown';
      const ended = signal ? `was killed by ${signal}` : `exited with ${exitCode}`;
      settle({ status, message: output === '' ? `${rule.path} ${ended} and printed nothing` : output, exitCode, signal });
    });
  });
}

/**
 * What a plugin's environment holds: the agent's, as NPD passes its own (exec.Cmd with no Env),
 * without the agent's settings: its config keys (NODEPULSE__*) and NODE_OPTIONS (V8 flags for
 * the agent, not for a plugin that happens to be a Node script).
 */
export function pluginEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('NODEPULSE_') && name !== 'NODE_OPTIONS'));
}

/** The monitor's name, and the prefix of its conditions' sources (`plugin/ntp-custom-plugin-monitor/NTPProblem`). */
export function pluginMonitorName(source: string): string {
  return `plugin/${source}`;
}

/**
 * NPD's custom plugin monitor, one per file: every rule runs at start and then each
 * invoke_interval, at most `concurrency` of the file's at once; a rule still running when its
 * interval comes again is not started twice (NPD waits for a whole batch, so one slow plugin
 * holds back the others; here only itself). A permanent rule's exit status sets its condition,
 * a temporary rule's problem is an Event.
 */
export class CustomPluginMonitor implements Monitor {
  readonly name: string;
  readonly rules: ConditionRule[];
  /** Each rule's run while it waits for a slot or runs: a rule is never started twice. */
  private readonly pending = new Map<PluginRule, Promise<void>>();
  /** Runs waiting for one of the `concurrency` slots. */
  private readonly waiting: Array<() => void> = [];
  private slotsTaken = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly controller = new AbortController();
  private readonly env: NodeJS.ProcessEnv;
  private sink: MonitorSink | undefined;

  constructor(
    private readonly set: PluginSet,
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.name = pluginMonitorName(set.source);
    this.env = pluginEnvironment(env);
    this.rules = set.conditions.map((condition) => ({
      type: condition.type,
      probe: `${this.name}/${condition.type}`,
      // NPD's condition follows each result: no hysteresis beyond the plugin's own.
      failureThreshold: 1,
      recoveryThreshold: 1,
      initial: { reason: condition.reason, message: condition.message },
    }));
  }

  start(sink: MonitorSink): void {
    this.sink = sink;
    void this.runNow();
    for (const rule of this.set.rules) this.timers.push(setInterval(() => void this.due(rule), rule.intervalMs));
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.controller.abort();
  }

  /** Runs every rule that is not already waiting or running; resolves once those runs are reported. */
  async runNow(): Promise<void> {
    await Promise.all(this.set.rules.map((rule) => this.due(rule)));
  }

  private due(rule: PluginRule): Promise<void> {
    const pending = this.pending.get(rule);
    if (pending) {
      this.log.debug({ path: rule.path }, 'plugin not started: its last run has not ended');
      return pending;
    }
    const signal = this.controller.signal;
    const run = this.slot()
      .then(async () => {
        if (signal.aborted) return;
        const result = await runPlugin(rule, { cwd: this.set.workingDir, env: this.env, maxOutputLength: this.set.maxOutputLength }, signal);
        if (!signal.aborted) this.report(rule, result);
      })
      .finally(() => {
        this.pending.delete(rule);
        this.freeSlot();
      });
    this.pending.set(rule, run);
    return run;
  }

  private slot(): Promise<void> {
    if (this.slotsTaken < this.set.concurrency) {
      this.slotsTaken += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The slot passes to the next waiting run, if any. */
  private freeSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.slotsTaken -= 1;
  }

  private report(rule: PluginRule, run: PluginRun): void {
    const figures = { path: rule.path, exitCode: run.exitCode, signal: run.signal, timedOut: run.timedOut, stdoutBytes: run.stdoutBytes };
    const level = run.status === 'ok' ? 'debug' : 'info';
    this.log[level]({ ...figures, status: run.status, durationMs: run.durationMs, ...(run.stderr ? { stderr: run.stderr } : {}) }, 'plugin ran');
    const at = Date.now();
    const base = { at, durationMs: run.durationMs, figures };
    if (rule.type === 'temporary') {
      // NPD's Event comes for every exit status from NonOK up, Unknown included (custom_plugin_monitor.go generateStatus).
      if (run.status !== 'ok') this.sink?.emit({ ...base, probe: this.name, temporary: true, healthy: false, reason: rule.reason, message: run.message });
      return;
    }
    const type = rule.condition as string;
    const healthy = this.set.conditions.find((c) => c.type === type) as PluginSet['conditions'][number];
    const probe = `${this.name}/${type}`;
    this.sink?.emit({ ...base, probe, ...this.verdict(rule, type, healthy, run) });
  }

  /** NPD's condition update (custom_plugin_monitor.go generateStatus), as a verdict for the engine. */
  private verdict(rule: PluginRule, type: string, healthy: { reason: string; message: string }, run: PluginRun): Pick<ProbeResult, 'healthy' | 'reason' | 'message' | 'unknown'> {
    if (run.status === 'ok') return { healthy: true, reason: healthy.reason, message: healthy.message };
    // Unknown keeps the condition's default (healthy) reason with the plugin's message, as NPD
    // sets it ("When status unknown, the result's message is important for debug").
    if (run.status === 'unknown') return { healthy: false, unknown: true, reason: healthy.reason, message: run.message };
    const current = this.sink?.condition(type);
    // A True condition keeps its message while the reason stays, unless the file asks for each new one.
    const keep = !this.set.messageChangeUpdates && current?.status === 'True' && current.reason === rule.reason;
    return { healthy: false, reason: rule.reason, message: keep && current ? current.message : run.message };
  }
}
