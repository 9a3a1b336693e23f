import { appendFileSync, close, fstat, fstatSync, mkdirSync, mkdtempSync, open, openSync, read, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLogger } from '../../common/log.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConditionEngine, type Observation, type ProblemEvent } from '../../agent/conditions/conditionEngine.js';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { builtinRuleSets } from '../../agent/monitors/builtinRules.js';
import { KernelLogMonitor } from '../../agent/monitors/kernelMonitor.js';
import type { KmsgFs } from '../../agent/monitors/kmsgReader.js';
import { LogMatcher } from '../../agent/monitors/logMatcher.js';
import type { LogRuleSet } from '../../agent/monitors/logRules.js';
import { ruleSetFrom } from '../../agent/monitors/ruleFile.js';
import { ProbeLoop } from '../../agent/probeLoop.js';
import { fakeKmsgDevice, kmsgLine as line } from '../support/fakeKmsgDevice.js';

const log = jsonLogger({ level: 'silent' });
const fixtures = join(import.meta.dirname, '../fixtures/npd');
const npdFile = (name: string) => JSON.parse(readFileSync(join(fixtures, name), 'utf8')) as unknown;
const builtin = (name: keyof typeof builtinRuleSets) => ruleSetFrom(builtinRuleSets[name], `built-in ${name}`);

const bootId = 'c1d2e3f4-0000-4000-8000-000000000001';
/** Seconds since boot in the fixture /proc/uptime. */
const uptime = 1000;

const mountLine = (id: number, device: string, mountPoint: string, source: string, superOptions: string) =>
  `${id} 1 ${device} / ${mountPoint} rw,relatime shared:1 - ext4 ${source} ${superOptions}`;

/** A fixture host: /proc (boot ID, uptime, mountinfo), /sys (sda1 is 8:1) and a kernel log file. */
function host(mounts: string[] = [mountLine(20, '8:1', '/', '/dev/sda1', 'rw,errors=remount-ro')]) {
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-kmsg-'));
  const procRoot = join(dir, 'proc');
  const sysRoot = join(dir, 'sys');
  mkdirSync(join(procRoot, 'sys/kernel/random'), { recursive: true });
  mkdirSync(join(procRoot, 'self'), { recursive: true });
  mkdirSync(join(sysRoot, 'class/block/sda1'), { recursive: true });
  writeFileSync(join(procRoot, 'sys/kernel/random/boot_id'), `${bootId}\n`);
  writeFileSync(join(procRoot, 'uptime'), `${uptime}.00 500.00\n`);
  writeFileSync(join(procRoot, 'self/mountinfo'), `${mounts.join('\n')}\n`);
  writeFileSync(join(sysRoot, 'class/block/sda1/dev'), '8:1\n');
  const kmsgPath = join(dir, 'kmsg');
  writeFileSync(kmsgPath, '');
  let seq = 100;
  return {
    dir,
    procRoot,
    sysRoot,
    kmsgPath,
    setMounts: (lines: string[]) => writeFileSync(join(procRoot, 'self/mountinfo'), `${lines.join('\n')}\n`),
    /** A record `secondsAgo` before now (by the fixture's clock: boot was `uptime` s ago). */
    write: (text: string, secondsAgo = 0, prio = 3) => {
      seq += 1;
      appendFileSync(kmsgPath, `${prio},${seq},${Math.round((uptime - secondsAgo) * 1e6)},-;${text}\n SUBSYSTEM=test\n`);
    },
  };
}

type Host = ReturnType<typeof host>;
const nodeFsFor = (): KmsgFs => ({ open, openSync, read, readSync, close, fstat, fstatSync });
const running: ProbeLoop[] = [];
afterEach(() => {
  for (const loop of running.splice(0)) loop.stop();
});

/** The monitor through the probe loop and the engine, as the agent runs it; what it reports is collected. */
function run(h: Host, sets: LogRuleSet[], options: { fs?: KmsgFs; now?: () => number; kmsgPath?: string } = {}) {
  const now = options.now ?? Date.now;
  const monitor = new KernelLogMonitor(
    sets,
    { kmsgPath: options.kmsgPath ?? h.kmsgPath, procRoot: h.procRoot, sysRoot: h.sysRoot, readonlyPaths: ['/'], mountCheckMs: 50, lostReportMs: 60_000, readRetryMs: 20, fs: options.fs },
    log,
    now,
  );
  const engine = new ConditionEngine(monitor.rules, now(), monitor.boot);
  const loop = new ProbeLoop([], engine, log, [monitor], now);
  running.push(loop);
  const observations: Observation[] = [];
  const events: ProblemEvent[] = [];
  loop.on('observation', (o) => observations.push(o));
  loop.on('events', (e) => events.push(...e));
  return { monitor, engine, loop, observations, events, start: () => loop.startMonitors() };
}

describe("NPD's own rule files", () => {
  it('kernel-monitor.json and readonly-monitor.json load unchanged, and equal the built-in sets rule for rule', () => {
    for (const [file, name] of [
      ['kernel-monitor.json', 'kernel'],
      ['readonly-monitor.json', 'readonly'],
    ] as const) {
      const theirs = ruleSetFrom(npdFile(file), file);
      const ours = builtin(name);
      expect({ ...theirs, origin: '' }).toEqual({ ...ours, origin: '' });
    }
  });

  it('behave alike on kernel lines: the same rules fire with the same reasons and lines', () => {
    const lines = [
      'Out of memory: Killed process 4242 (java) total-vm:9000kB, anon-rss:800kB, file-rss:0kB, shmem-rss:0kB',
      'INFO: task docker:1234 blocked for more than 120 seconds.',
      'INFO: task kworker/u8:2:77 blocked for more than 120 seconds.',
      'unregister_netdevice: waiting for eth0 to become free. Usage count = 1',
      'EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0',
      'EXT4-fs (sda1): Remounting filesystem read-only',
      'XFS (sdb1): Corruption detected. Shutting down filesystem',
      '{1}[Hardware Error]: event severity: fatal',
      'Buffer I/O error on dev sdc, logical block 0, async page read',
      'nothing to see here',
    ];
    const fire = (sets: LogRuleSet[]) => {
      const matchers = sets.map((set) => new LogMatcher(set));
      return lines.map((line) => matchers.flatMap((m) => m.push(line).map((match) => `${match.rule.type}:${match.rule.condition ?? '-'}:${match.rule.reason}:${match.lines.join('|')}`)));
    };
    const ours = fire([builtin('kernel'), builtin('readonly')]);
    expect(fire([ruleSetFrom(npdFile('kernel-monitor.json'), 'k'), ruleSetFrom(npdFile('readonly-monitor.json'), 'r')])).toEqual(ours);
    expect(ours.map((fired) => fired.map((f) => f.split(':').slice(0, 3).join(':')))).toEqual([
      ['temporary:-:OOMKilling'],
      ['temporary:-:TaskHung', 'permanent:KernelDeadlock:DockerHung'],
      ['temporary:-:TaskHung'],
      ['temporary:-:UnregisterNetDevice'],
      ['temporary:-:Ext4Error'],
      ['permanent:ReadonlyFilesystem:FilesystemIsReadOnly'],
      ['permanent:XfsShutdown:XfsHasShutdown'],
      ['permanent:CperHardwareErrorFatal:CperHardwareErrorFatal'],
      ['temporary:-:IOError'],
      [],
    ]);
  });

  it("refuses a journald file (docker-monitor.json) with what nodepulse reads instead", () => {
    expect(() => ruleSetFrom(npdFile('docker-monitor.json'), 'docker-monitor.json')).toThrow(/plugin: only "kmsg" \(\/dev\/kmsg\) is read by nodepulse/);
  });
});

describe('rule sets and multi-line patterns', () => {
  it('a pattern spanning lines matches across the buffer, the message holding every line it spans', () => {
    const set = ruleSetFrom(
      { source: 'two-line', bufferSize: 3, conditions: [], rules: [{ type: 'temporary', reason: 'Pair', pattern: 'first half\\nsecond half' }] },
      'test',
    );
    const matcher = new LogMatcher(set);
    expect(matcher.push('first half')).toEqual([]);
    expect(matcher.push('second half')).toEqual([{ rule: set.rules[0], lines: ['first half', 'second half'] }]);
    // Patterns end on the newest line (NPD's \z): the pair no longer matches once a line follows.
    expect(matcher.push('later')).toEqual([]);
  });

  it("a one-line pattern's leading .* (NPD's CPER rules) is not needed to match: the same lines match and the same do not", () => {
    const set = ruleSetFrom(
      {
        source: 'leading',
        bufferSize: 1,
        conditions: [],
        rules: [
          { type: 'temporary', reason: 'Fatal', pattern: '.*\\[Hardware Error\\]: event severity: fatal$' },
          { type: 'temporary', reason: 'Lazy', pattern: '.*?ends here' },
          { type: 'temporary', reason: 'Anything', pattern: '.*' },
          { type: 'temporary', reason: 'Repeated', pattern: '.*.*x' },
        ],
      },
      'test',
    );
    const matcher = new LogMatcher(set);
    const reasons = (line: string) => matcher.push(line).map((m) => m.rule.reason);
    expect(reasons('mce: [Hardware Error]: event severity: fatal')).toEqual(['Fatal', 'Anything']);
    expect(reasons('[Hardware Error]: event severity: fatal')).toEqual(['Fatal', 'Anything']);
    expect(reasons('[Hardware Error]: event severity: fatal, then more')).toEqual(['Anything']);
    expect(reasons('it ends here')).toEqual(['Lazy', 'Anything']);
    expect(reasons('')).toEqual(['Anything']);
    expect(reasons('ax')).toEqual(['Anything', 'Repeated']);
  });

  it('the buffer holds bufferSize lines: a pattern cannot span more', () => {
    const set = ruleSetFrom({ source: 's', bufferSize: 2, conditions: [], rules: [{ type: 'temporary', reason: 'Span', pattern: 'a\\n[^\\n]*\\nc' }] }, 'test');
    const matcher = new LogMatcher(set);
    matcher.push('a');
    matcher.push('b');
    expect(matcher.push('c')).toEqual([]);
  });
});

describe('the kernel log monitor (a fixture file stands for /dev/kmsg: unit tests do not write the real kernel log)', () => {
  it('turns KernelDeadlock True on a docker hang line and reports an OOM kill as an Event', async () => {
    const h = host();
    const m = run(h, [builtin('kernel')]);
    m.start();
    h.write('Out of memory: Killed process 4242 (java) total-vm:9000kB, anon-rss:800kB, file-rss:0kB, shmem-rss:0kB');
    h.write('INFO: task docker:1234 blocked for more than 120 seconds.');
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')?.status).toBe('True'));
    expect(m.engine.get('KernelDeadlock')).toMatchObject({ reason: 'DockerHung' });
    expect(m.engine.get('KernelDeadlock')?.message).toBe(`INFO: task docker:1234 blocked for more than 120 seconds. [boot ${bootId} seq 102]`);
    expect(m.events.map((e) => e.reason)).toEqual(['OOMKilling', 'TaskHung']);
  });

  it('replays the lookback (5 min): a line logged while no agent ran counts, an older one does not', async () => {
    const h = host();
    h.write('XFS (sdb1): old news. Shutting down filesystem', 301);
    h.write('INFO: task docker:1 blocked for more than 120 seconds.', 299);
    const m = run(h, [builtin('kernel')]);
    m.start();
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')?.status).toBe('True'));
    expect(m.engine.get('XfsShutdown')?.status).toBe('False');
  });

  it('clears ReadonlyFilesystem when the device in the line is mounted read-write again (mountinfo superblock), not before', async () => {
    const h = host([mountLine(20, '8:1', '/', '/dev/sda1', 'ro,errors=remount-ro'), mountLine(30, '8:16', '/data', '/dev/sdb', 'rw')]);
    const m = run(h, [builtin('readonly')]);
    m.start();
    h.write('EXT4-fs (sda1): Remounting filesystem read-only');
    await vi.waitFor(() => expect(m.engine.get('ReadonlyFilesystem')?.status).toBe('True'));
    // Several checks pass while sda1 is still read-only.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(m.engine.get('ReadonlyFilesystem')?.status).toBe('True');
    h.setMounts([mountLine(20, '8:1', '/', '/dev/sda1', 'rw,errors=remount-ro'), mountLine(30, '8:16', '/data', '/dev/sdb', 'rw')]);
    await vi.waitFor(() => expect(m.engine.get('ReadonlyFilesystem')?.status).toBe('False'));
    const cleared = m.engine.get('ReadonlyFilesystem');
    expect(cleared?.reason).toBe('RemountedReadWrite');
    expect(cleared?.message).toContain('/ (8:1, /dev/sda1) rw');
    expect(cleared?.message).not.toContain('/data');
  });

  it('checks the configured paths when the line names no device it can find', async () => {
    const h = host([mountLine(20, '8:1', '/', '/dev/sda1', 'rw')]);
    const m = run(h, [builtin('readonly')]);
    m.start();
    h.write('EXT4-fs (nodepulse-test0): Remounting filesystem read-only');
    await vi.waitFor(() => expect(m.engine.get('ReadonlyFilesystem')?.reason).toBe('RemountedReadWrite'));
  });

  it('checks a ReadonlyFilesystem adopted True from the Node too (the agent restarted meanwhile)', async () => {
    const h = host([mountLine(20, '8:1', '/', '/dev/sda1', 'rw')]);
    const m = run(h, [builtin('readonly')]);
    m.engine.adopt({ type: 'ReadonlyFilesystem', status: 'True', reason: 'FilesystemIsReadOnly', message: `EXT4-fs (sda1): Remounting filesystem read-only [boot ${bootId}]`, lastTransitionTime: Date.now() - 5000 });
    m.start();
    await vi.waitFor(() => expect(m.engine.get('ReadonlyFilesystem')?.reason).toBe('RemountedReadWrite'));
  });

  it('reads the kernel log it opened before the agent dropped its privileges, though the path can no longer be opened', async () => {
    const h = host();
    const m = run(h, [builtin('kernel')]);
    m.monitor.openPrivileged();
    renameSync(h.kmsgPath, `${h.kmsgPath}.moved`);
    m.start();
    appendFileSync(`${h.kmsgPath}.moved`, `3,101,${uptime * 1e6},-;INFO: task docker:1234 blocked for more than 120 seconds.\n`);
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')?.reason).toBe('DockerHung'));
  });

  it('reports an early open that failed (EACCES) as Unknown with the fix, once the monitor starts', async () => {
    const h = host();
    const denied: KmsgFs['openSync'] = () => {
      throw Object.assign(new Error("EACCES: permission denied, open '/dev/kmsg'"), { code: 'EACCES' });
    };
    const m = run(h, [builtin('kernel')], { fs: { ...nodeFsFor(), openSync: denied } });
    m.monitor.openPrivileged();
    m.start();
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')?.status).toBe('Unknown'));
    expect(m.engine.get('KernelDeadlock')?.message).toMatch(/EACCES.*opens it as root, before it drops to security.runAsUser/);
  });

  it('turns its conditions Unknown (ProbeReadError, with the fix) when the kernel log cannot be opened', async () => {
    const h = host();
    const m = run(h, [builtin('kernel')], { kmsgPath: join(h.dir, 'no-kmsg') });
    m.start();
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')?.status).toBe('Unknown'));
    expect(m.engine.get('KernelDeadlock')?.reason).toBe('ProbeReadError');
    expect(m.engine.get('KernelDeadlock')?.message).toMatch(/no-kmsg: ENOENT.*mount the host \/dev\/kmsg into the pod/);
  });

  it('survives the ring buffer overwriting records (EPIPE): reads on and says how many were lost', async () => {
    const h = host();
    const device = fakeKmsgDevice(['3,10,999000000,-;first\n', 'EPIPE', '3,15,999100000,-;INFO: task docker:9 blocked for more than 120 seconds.\n']);
    const m = run(h, [builtin('kernel')], { fs: device.fs });
    m.start();
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')?.status).toBe('True'));
    expect(m.monitor.lostRecords).toBe(4);
    expect(m.events).toEqual([
      expect.objectContaining({ reason: 'KernelLogRecordsLost', message: expect.stringMatching(/^4 kernel log records were overwritten/) }),
      expect.objectContaining({ reason: 'TaskHung' }),
    ]);
  });
});

describe('the kernel monitor after a read error', () => {
  it('turns its conditions Unknown, and back to False once the log reads again, even when the kernel logs nothing new', async () => {
    const device = fakeKmsgDevice([line(101, 'hello'), 'EIO']);
    const m = run(host(), [builtin('kernel')], { fs: device.fs });
    m.start();
    await vi.waitFor(() => expect(m.observations.some((o) => o.condition.type === 'KernelDeadlock' && o.condition.status === 'Unknown')).toBe(true));
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')).toMatchObject({ status: 'False', message: expect.stringMatching(/^reading .* again$/) }));
  });

  it('raises again, from the log read anew, a problem it had found before the error', async () => {
    const device = fakeKmsgDevice([line(101, 'INFO: task docker:9 blocked for more than 120 seconds.', 3), 'EIO']);
    const m = run(host(), [builtin('kernel')], { fs: device.fs });
    m.start();
    await vi.waitFor(() => expect(m.observations.some((o) => o.condition.type === 'KernelDeadlock' && o.condition.status === 'Unknown')).toBe(true));
    await vi.waitFor(() => expect(m.engine.get('KernelDeadlock')).toMatchObject({ status: 'True', reason: 'DockerHung' }));
  });
});

describe('kernel monitor config', () => {
  const kernel = (overrides: object) => agentConfigSchema.safeParse({ monitors: { kernel: { enabled: true, ...overrides } } });
  const issues = (result: ReturnType<typeof kernel>) => (result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));

  it('loads the built-in sets, and NPD files from disk as they are', () => {
    const parsed = kernel({ builtin: ['gpu'], ruleFiles: [join(fixtures, 'kernel-monitor.json'), join(fixtures, 'readonly-monitor.json')] });
    expect(parsed.success && parsed.data.monitors.kernel.ruleSets.map((s) => s.source)).toEqual(['gpu-monitor', 'kernel-monitor', 'readonly-monitor']);
  });

  it('names the file, the rule and what is wrong with a pattern', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodepulse-rules-'));
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({ source: 'bad', conditions: [{ type: 'Stuck', reason: 'NotStuck', message: 'ok' }], rules: [{ type: 'permanent', condition: 'Stuck', reason: 'Hung', pattern: '(a)\\1' }, { type: 'permanent', condition: 'Nope', reason: 'X', pattern: 'x' }] }),
    );
    expect(issues(kernel({ builtin: [], ruleFiles: [file] })).sort()).toEqual([
      expect.stringMatching(new RegExp(`^monitors.kernel.ruleFiles.0: ${file}: rules.0.pattern: \\\\1 is a backreference`)),
      expect.stringMatching(/^monitors.kernel.ruleFiles.0: .*rules.1.condition: "Nope" is not in conditions\[\]/),
    ]);
  });

  it('refuses two sets owning one condition, and a file it cannot read', () => {
    expect(issues(kernel({ ruleFiles: [join(fixtures, 'kernel-monitor.json')] }))).toEqual([expect.stringMatching(/condition KernelDeadlock is already set by built-in kernel/), expect.stringMatching(/XfsShutdown/), expect.stringMatching(/CperHardwareErrorFatal/)]);
    expect(issues(kernel({ ruleFiles: ['/nonexistent/kernel-monitor.json'] }))).toEqual([expect.stringMatching(/^monitors.kernel.ruleFiles.0: \/nonexistent\/kernel-monitor.json: cannot read it: ENOENT/)]);
  });
});
