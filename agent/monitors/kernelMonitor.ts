import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { BootFacts, ConditionRule } from '../conditions/conditionEngine.js';
import { clearedReasons, engineReasons, logMonitorConditionTypes } from '../../common/contract.js';
import { ProcFileError } from '../probes/procFiles.js';
import type { ProbeResult } from '../probes/probe.js';
import { KmsgReader, type KmsgFs, type KmsgRecord } from './kmsgReader.js';
import { LogMatcher } from './logMatcher.js';
import type { LogRuleSet } from './logRules.js';
import type { Monitor, MonitorSink } from './monitor.js';
import { readWriteAgain } from './mountState.js';

export interface KernelMonitorOptions {
  kmsgPath: string;
  procRoot: string;
  sysRoot: string;
  /** Checked for ReadonlyFilesystem when the line names no device (or it is not mounted). */
  readonlyPaths: readonly string[];
  mountCheckMs: number;
  /** Lost records are said at most this often (a flood would otherwise make one Event per gap). */
  lostReportMs: number;
  /** After a read error the log is opened again this much later (30 s). */
  readRetryMs?: number;
  fs?: KmsgFs;
}

/** Longer condition messages are cut: a multi-line match can hold a whole buffer of lines. */
const maxMessage = 1024;

/** The reader's own name and the prefix of its conditions' sources (`kernel/KernelDeadlock`). */
export const kernelMonitorName = 'kernel';

/** The boot this agent runs in: /proc/sys/kernel/random/boot_id and, from /proc/uptime, when it started. */
export function readBootFacts(procRoot: string, now = Date.now()): BootFacts {
  const read = (path: string) => {
    const file = join(procRoot, path);
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ProcFileError(file, (err as Error).message);
    }
  };
  const bootId = read('sys/kernel/random/boot_id');
  const uptimeFile = join(procRoot, 'uptime');
  const uptime = Number(read('uptime').split(/\s+/)[0]);
  if (!Number.isFinite(uptime)) throw new ProcFileError(uptimeFile, 'no uptime in seconds at the start of the file');
  return { bootId, startedAt: now - uptime * 1000 };
}

/**
 * NPD's kernel monitor: /dev/kmsg through NPD rule sets. A permanent rule's match turns its
 * condition True at once (the line is the evidence); it clears by evidence only: a new boot
 * (the engine), every affected mount read-write again (ReadonlyFilesystem, checked here), or
 * the rule's clearAfterSeconds (the engine). A temporary rule's match is an Event.
 */
export class KernelLogMonitor implements Monitor {
  readonly name = kernelMonitorName;
  readonly rules: ConditionRule[];
  readonly boot: BootFacts | undefined;
  private readonly bootError: ProcFileError | undefined;
  private readonly matchers: LogMatcher[];
  private readonly reader: KmsgReader;
  private sink: MonitorSink | undefined;
  private startedAt = 0;
  private readFailing = false;
  private lostUnsaid = 0;
  private lostTimer: NodeJS.Timeout | undefined;
  private mountTimer: NodeJS.Timeout | undefined;
  private readonly controller = new AbortController();

  constructor(
    sets: readonly LogRuleSet[],
    private readonly options: KernelMonitorOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.matchers = sets.map((set) => new LogMatcher(set));
    this.rules = sets.flatMap((set) =>
      set.conditions.map((condition) => {
        const quiet = set.rules.filter((r) => r.condition === condition.type && r.clearAfterSeconds !== undefined).map((r) => r.clearAfterSeconds as number);
        return {
          type: condition.type,
          probe: `${kernelMonitorName}/${condition.type}`,
          failureThreshold: 1,
          recoveryThreshold: 1,
          initial: { reason: condition.reason, message: condition.message },
          bootScoped: true,
          ...(quiet.length > 0 ? { clearAfterMs: Math.max(...quiet) * 1000 } : {}),
        };
      }),
    );
    let boot: BootFacts | undefined;
    try {
      boot = readBootFacts(options.procRoot, now());
    } catch (err) {
      if (!(err instanceof ProcFileError)) throw err;
      this.bootError = err;
    }
    this.boot = boot;
    this.reader = new KmsgReader(options.kmsgPath, { retryMs: options.readRetryMs ?? 30_000, followMs: 100 }, options.fs);
  }

  /** Records lost to ring-buffer overwrites since start. */
  get lostRecords(): number {
    return this.reader.lostTotal;
  }

  openPrivileged(): void {
    this.reader.openNow();
  }

  start(sink: MonitorSink): void {
    this.sink = sink;
    this.startedAt = this.now();
    if (this.bootError) {
      this.agentFault(`cannot use ${this.bootError.file}: ${this.bootError.detail}; kernel log lines cannot be dated or tied to a boot (check procRoot)`);
      return;
    }
    this.reader.on('reading', () => this.onReading());
    this.reader.on('record', (record) => this.onRecord(record));
    this.reader.on('lost', (lost) => this.onLost(lost));
    this.reader.on('error', (err) => {
      this.readFailing = true;
      const hint =
        err.code === 'EPERM' || err.code === 'EACCES'
          ? 'the agent opens it as root, before it drops to security.runAsUser: it needs CAP_SYSLOG while kernel.dmesg_restrict=1, and a privileged container to pass the device cgroup (see the DaemonSet)'
          : err.code === 'ENOENT'
            ? 'mount the host /dev/kmsg into the pod (see the DaemonSet)'
            : 'the agent tries again in 30 s';
      this.log.warn({ path: this.options.kmsgPath, code: err.code }, 'cannot read the kernel log');
      this.agentFault(`cannot read ${this.options.kmsgPath}: ${err.message}; ${hint}`);
    });
    this.reader.start();
    this.scheduleMountCheck();
  }

  stop(): void {
    this.reader.stop();
    this.controller.abort();
    clearTimeout(this.lostTimer);
    clearTimeout(this.mountTimer);
  }

  private emit(result: Omit<ProbeResult, 'durationMs' | 'figures'> & { figures?: ProbeResult['figures'] }): void {
    this.sink?.emit({ durationMs: 0, figures: {}, ...result });
  }

  /** Every condition of the monitor goes Unknown: the agent cannot see the kernel log. */
  private agentFault(message: string): void {
    for (const rule of this.rules) this.emit({ probe: rule.probe, at: this.now(), healthy: false, reason: engineReasons.probeReadError, message });
  }

  /**
   * The log reads again after an error: the conditions it had turned Unknown go back to False,
   * and the reopened log, read again from its oldest record, raises again what it still shows.
   */
  private onReading(): void {
    if (!this.readFailing) return;
    this.readFailing = false;
    for (const rule of this.rules) {
      if (this.sink?.condition(rule.type)?.status !== 'Unknown') continue;
      this.emit({ probe: rule.probe, at: this.now(), healthy: true, reason: rule.initial?.reason ?? engineReasons.pending, message: `reading ${this.options.kmsgPath} again` });
    }
  }

  private onRecord(record: KmsgRecord): void {
    const boot = this.boot as BootFacts;
    const at = boot.startedAt + record.usec / 1000;
    const replayed = at < this.startedAt;
    for (const matcher of this.matchers) {
      if (at < this.startedAt - matcher.set.lookbackMs) continue;
      for (const { rule, lines } of matcher.push(record.message)) {
        const text = lines.join('\n');
        const message = cut(rule.messageSuffix ? `${text}; ${rule.messageSuffix}` : text);
        const figures = { seq: record.seq, source: matcher.set.source, pattern: rule.pattern };
        if (rule.type === 'temporary') {
          this.emit({ probe: this.name, temporary: true, at, healthy: false, reason: rule.reason, message, figures, replayed, seq: record.seq });
          continue;
        }
        this.emit({ probe: `${this.name}/${rule.condition}`, at, healthy: false, reason: rule.reason, message, figures, replayed, seq: record.seq });
        if (rule.condition === logMonitorConditionTypes.readonlyFilesystem) this.scheduleMountCheck();
      }
    }
  }

  private onLost(lost: number): void {
    this.lostUnsaid += lost;
    if (this.lostTimer) return;
    const report = () => {
      this.lostTimer = undefined;
      if (this.lostUnsaid === 0) return;
      const count = this.lostUnsaid;
      this.lostUnsaid = 0;
      this.log.warn({ lost: count, lostTotal: this.reader.lostTotal }, 'kernel log records were overwritten before the agent read them');
      this.emit({
        probe: this.name,
        temporary: true,
        at: this.now(),
        healthy: false,
        reason: 'KernelLogRecordsLost',
        message: `${count} kernel log records were overwritten in the ring buffer before the agent read them (${this.reader.lostTotal} since start); rules did not see them`,
        figures: { lost: count, lostTotal: this.reader.lostTotal },
      });
      this.lostTimer = setTimeout(report, this.options.lostReportMs);
    };
    report();
  }

  /**
   * While ReadonlyFilesystem is True (set here or adopted from the Node), the mounts its line
   * names are checked every mountCheckMs; all read-write again clears it.
   */
  private scheduleMountCheck(): void {
    if (this.mountTimer || !this.rules.some((r) => r.type === logMonitorConditionTypes.readonlyFilesystem)) return;
    this.mountTimer = setTimeout(() => void this.checkMounts(), this.options.mountCheckMs);
  }

  private async checkMounts(): Promise<void> {
    this.mountTimer = undefined;
    const type = logMonitorConditionTypes.readonlyFilesystem;
    const condition = this.sink?.condition(type);
    if (!condition || condition.status !== 'True') return;
    const probe = `${this.name}/${type}`;
    try {
      const verdict = await readWriteAgain(condition.message, this.options, this.options.readonlyPaths, this.controller.signal);
      if (verdict.readWrite) {
        this.emit({
          probe,
          at: this.now(),
          healthy: true,
          reason: clearedReasons.remountedReadWrite,
          message: `cleared: mounted read-write again: ${verdict.checked.join('; ')}; it was: ${condition.message}`,
          figures: { checked: verdict.checked },
        });
        return;
      }
    } catch (err) {
      if (this.controller.signal.aborted) return;
      // The condition stays as it is: no evidence either way. Said in the log, tried again.
      this.log.warn({ err: (err as Error).message }, 'cannot check whether the read-only filesystem is writable again');
    }
    this.scheduleMountCheck();
  }
}

function cut(text: string): string {
  return text.length > maxMessage ? `${text.slice(0, maxMessage - 3)}...` : text;
}
