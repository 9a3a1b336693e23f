import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLogger } from '../../common/log.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ConditionEngine, type ProblemEvent } from '../../agent/conditions/conditionEngine.js';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { CustomPluginMonitor } from '../../agent/monitors/customPluginMonitor.js';
import { ProbeLoop } from '../../agent/probeLoop.js';
import { npdCustomPluginMonitor } from '../fixtures/plugins/npdCustomPluginMonitor.js';

const dir = mkdtempSync(join(tmpdir(), 'nodepulse-plugin-files-'));
const loops: ProbeLoop[] = [];
afterEach(() => {
  for (const loop of loops.splice(0)) loop.stop();
});

/** NPD's layout: its working directory holds config/plugin/; check_ntp.sh exits with what `ntp-state` holds. */
const npdRoot = join(dir, 'npd-root');
mkdirSync(join(npdRoot, 'config/plugin'), { recursive: true });
const checkNtp = join(npdRoot, 'config/plugin/check_ntp.sh');
writeFileSync(checkNtp, `#!/bin/sh\nif [ "$(cat ${npdRoot}/ntp-state)" = up ]; then echo "ntp.service is running"; exit 0; fi\necho "ntp.service is not running"\nexit 1\n`);
chmodSync(checkNtp, 0o755);

let files = 0;
function file(content: unknown): string {
  files += 1;
  const path = join(dir, `monitor-${files}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const parse = (customPlugins: object, monitors: object = {}) => agentConfigSchema.safeParse({ monitors: { customPlugins: { enabled: true, workingDir: npdRoot, ...customPlugins }, ...monitors } });
const issues = (result: ReturnType<typeof parse>) => (result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
const sample = (change: (copy: typeof npdCustomPluginMonitor) => void) => {
  const copy = structuredClone(npdCustomPluginMonitor);
  change(copy);
  return file(copy);
};

describe('NPD custom-plugin-monitor files', () => {
  it("loads NPD's own custom-plugin-monitor.json unchanged, with NPD's defaults and its relative paths resolved as NPD's image resolves them", () => {
    const parsed = parse({ files: [file(npdCustomPluginMonitor)] });
    expect(parsed.success).toBe(true);
    const [set, ...more] = parsed.success ? parsed.data.monitors.customPlugins.sets : [];
    expect(more).toEqual([]);
    expect(set).toMatchObject({ source: 'ntp-custom-plugin-monitor', workingDir: npdRoot, concurrency: 3, maxOutputLength: 80, messageChangeUpdates: false });
    expect(set?.rules.map((r) => ({ type: r.type, command: r.command, timeoutMs: r.timeoutMs, intervalMs: r.intervalMs }))).toEqual([
      { type: 'temporary', command: checkNtp, timeoutMs: 3000, intervalMs: 30_000 },
      { type: 'permanent', command: checkNtp, timeoutMs: 3000, intervalMs: 30_000 },
    ]);
    const bare = parse({ files: [file({ plugin: 'custom', source: 's', rules: [{ type: 'temporary', reason: 'R', path: checkNtp, invoke_interval: '1m' }] })] });
    expect(bare.success && bare.data.monitors.customPlugins.sets[0]?.rules[0]).toMatchObject({ timeoutMs: 5000, intervalMs: 60_000 });
    expect(bare.success && bare.data.monitors.customPlugins.sets[0]).toMatchObject({ concurrency: 3, maxOutputLength: 80 });
  });

  it('runs that file as NPD would: NTPProblem follows check_ntp.sh, and its temporary rule is an NTPIsDown Event', async () => {
    writeFileSync(join(npdRoot, 'ntp-state'), 'up');
    const parsed = parse({ files: [file(npdCustomPluginMonitor)] });
    const set = parsed.success ? parsed.data.monitors.customPlugins.sets[0] : undefined;
    if (!set) throw new Error(issues(parsed).join('\n'));
    const log = jsonLogger({ level: 'silent' });
    const monitor = new CustomPluginMonitor(set, log);
    const engine = new ConditionEngine(monitor.rules, Date.now());
    const loop = new ProbeLoop([], engine, log, [monitor]);
    loops.push(loop);
    const events: ProblemEvent[] = [];
    loop.on('events', (e) => events.push(...e));
    loop.startMonitors();
    await monitor.runNow();
    expect(engine.get('NTPProblem')).toMatchObject({ status: 'False', reason: 'NTPIsUp', message: 'ntp service is up' });
    expect(events).toEqual([]);

    writeFileSync(join(npdRoot, 'ntp-state'), 'down');
    await monitor.runNow();
    expect(engine.get('NTPProblem')).toMatchObject({ status: 'True', reason: 'NTPIsDown', message: 'ntp.service is not running' });
    expect(events).toEqual([expect.objectContaining({ kind: 'temporary', reason: 'NTPIsDown', message: 'ntp.service is not running' })]);
  });

  it.each([
    ['a plugin other than custom', (f: typeof npdCustomPluginMonitor) => (f.plugin = 'kmsg'), 'plugin: must be "custom" (a custom-plugin-monitor file); system-log-monitor files go in monitors.kernel.ruleFiles'],
    ['a plugin path that does not exist', (f: typeof npdCustomPluginMonitor) => (f.rules[1]!.path = './config/plugin/check_nothing.sh'), `rules.1.path: "./config/plugin/check_nothing.sh" (${npdRoot}/config/plugin/check_nothing.sh: relative paths resolve against monitors.customPlugins.workingDir ${npdRoot}, as NPD's against its working directory) does not exist`],
    ['a negative timeout', (f: typeof npdCustomPluginMonitor) => (f.rules[0]!.timeout = '-3s'), 'rules.0.timeout: "-3s" must be above zero'],
    ['an interval that is not a Go duration', (f: typeof npdCustomPluginMonitor) => (f.pluginConfig.invoke_interval = '30 seconds'), 'pluginConfig.invoke_interval: "30 seconds" is not a Go duration; write one such as "30s"'],
    ['a rule timeout over the file timeout', (f: typeof npdCustomPluginMonitor) => (f.rules[0]!.timeout = '10s'), 'rules.0.timeout: 10s is longer than pluginConfig.timeout (5s), which NPD refuses too'],
    ['no concurrency', (f: typeof npdCustomPluginMonitor) => (f.pluginConfig.concurrency = 0), 'pluginConfig.concurrency: must be at least 1 (NPD waits forever with 0)'],
    ['a permanent rule with an undeclared condition', (f: typeof npdCustomPluginMonitor) => (f.rules[1]!.condition = 'ClockProblem'), 'rules.1.condition: "ClockProblem" is not in conditions[]'],
    ['a misspelt key', (f: typeof npdCustomPluginMonitor) => Object.assign(f.rules[0]!, { timout: '3s' }), 'rules.0: Unrecognized key: "timout"'],
  ])('refuses %s, naming the file and the key', (_what, change, message) => {
    const path = sample(change);
    expect(issues(parse({ files: [path] }))).toEqual([expect.stringContaining(`monitors.customPlugins.files.0: ${path}: ${message}`)]);
  });

  it('refuses a plugin the agent cannot execute, and a file it cannot read or parse', () => {
    const notExecutable = join(npdRoot, 'config/plugin/plain.sh');
    writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
    chmodSync(notExecutable, 0o644);
    const path = sample((f) => (f.rules[0]!.path = notExecutable));
    expect(issues(parse({ files: [path] }))).toEqual([`monitors.customPlugins.files.0: ${path}: rules.0.path: "${notExecutable}" is not executable by the agent; chmod +x it`]);
    expect(issues(parse({ files: ['/nonexistent/plugin-monitor.json'] }))).toEqual([expect.stringMatching(/^monitors.customPlugins.files.0: \/nonexistent\/plugin-monitor.json: cannot read it: ENOENT/)]);
    expect(issues(parse({ files: [file('{"plugin": "custom",')] }))).toEqual([expect.stringMatching(/^monitors.customPlugins.files.0: .*: not valid JSON/)]);
  });

  it('refuses a condition another source already sets: a probe, a kernel rule set, the restart monitor or another file', () => {
    const owning = (type: string) => sample((f) => {
      f.conditions[0]!.type = type;
      f.rules[1]!.condition = type;
    });
    expect(issues(parse({ files: [owning('KubeletProblem')] }))).toEqual([expect.stringMatching(/condition KubeletProblem is already set by a probe/)]);
    expect(issues(parse({ files: [owning('KernelDeadlock')] }, { kernel: { enabled: true } }))).toEqual([expect.stringMatching(/condition KernelDeadlock is already set by built-in kernel/)]);
    expect(issues(parse({ files: [owning('FrequentKubeletRestart')] }, { restarts: { enabled: true } }))).toEqual([expect.stringMatching(/FrequentKubeletRestart is already set by the restart monitor/)]);
    const first = file(npdCustomPluginMonitor);
    expect(issues(parse({ files: [first, file(npdCustomPluginMonitor)] }))).toEqual([expect.stringMatching(new RegExp(`^monitors.customPlugins.files.1: .*condition NTPProblem is already set by ${first}`))]);
  });

  it('reads no file while off (the default)', () => {
    const parsed = agentConfigSchema.safeParse({ monitors: { customPlugins: { files: ['/nonexistent/plugin-monitor.json'] } } });
    expect(parsed.success && parsed.data.monitors.customPlugins).toMatchObject({ enabled: false, sets: [] });
  });
});
