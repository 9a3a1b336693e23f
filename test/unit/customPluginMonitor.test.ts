import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLogger } from '../../common/log.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConditionEngine, type ProblemEvent } from '../../agent/conditions/conditionEngine.js';
import { CustomPluginMonitor, cutBytes, drainBytes, outputReadBytes, runPlugin } from '../../agent/monitors/customPluginMonitor.js';
import type { PluginRule, PluginSet } from '../../agent/monitors/pluginFile.js';
import { ProbeLoop } from '../../agent/probeLoop.js';

/**
 * NPD's custom plugin monitor with real plugins: shell scripts written to a temp dir and run as
 * the agent runs them (no fake of spawn). Timeouts are real: they are short, and the scripts
 * they kill sleep far longer, so a loaded machine does not change the outcome.
 */
const log = jsonLogger({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'nodepulse-plugins-'));
const loops: ProbeLoop[] = [];
afterEach(() => {
  for (const loop of loops.splice(0)) loop.stop();
});

let scripts = 0;
/** An executable sh script; `$DIR` in it is this test's temp dir. */
function script(body: string): string {
  scripts += 1;
  const path = join(dir, `plugin-${scripts}.sh`);
  writeFileSync(path, `#!/bin/sh\nDIR=${dir}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function rule(path: string, overrides: Partial<PluginRule> = {}): PluginRule {
  return { type: 'permanent', condition: 'TestProblem', reason: 'TestIsBroken', path, command: path, args: [], timeoutMs: 10_000, intervalMs: 3_600_000, ...overrides };
}

function pluginSet(rules: PluginRule[], overrides: Partial<PluginSet> = {}): PluginSet {
  return {
    origin: join(dir, 'test-monitor.json'),
    source: 'test-custom-plugin-monitor',
    workingDir: dir,
    concurrency: 3,
    maxOutputLength: 80,
    messageChangeUpdates: false,
    conditions: [{ type: 'TestProblem', reason: 'TestIsFine', message: 'the test check passes' }],
    rules,
    ...overrides,
  };
}

const runOptions = { cwd: dir, env: process.env, maxOutputLength: 80 };

/** The monitor through the probe loop and the engine, as the agent runs it. */
function monitorOf(set: PluginSet, env: NodeJS.ProcessEnv = process.env) {
  const monitor = new CustomPluginMonitor(set, log, env);
  const engine = new ConditionEngine(monitor.rules, Date.now());
  const loop = new ProbeLoop([], engine, log, [monitor]);
  loops.push(loop);
  const events: ProblemEvent[] = [];
  loop.on('events', (e) => events.push(...e));
  loop.on('observation', (o) => events.push(...o.events));
  loop.startMonitors();
  return { monitor, engine, events };
}

/** Running, and not a zombie (an orphan killed with its group waits for init to reap it). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** SIGKILL is sent by the time the run ends; the kernel ends the process a moment later. */
async function expectEnded(pid: number): Promise<void> {
  await vi.waitFor(() => expect(alive(pid), `pid ${pid} still running`).toBe(false), { timeout: 5000 });
}

/** start/end lines the scripts appended: at most how many ran at once. */
function mostAtOnce(logFile: string): number {
  let now = 0;
  let most = 0;
  for (const line of readFileSync(logFile, 'utf8').trim().split('\n')) {
    now += line.startsWith('start') ? 1 : -1;
    most = Math.max(most, now);
  }
  return most;
}

describe("NPD's plugin protocol", () => {
  it.each([
    [0, 'ok'],
    [1, 'problem'],
    [2, 'unknown'],
    [3, 'unknown'],
  ])('exit status %i is %s, with stdout as the message', async (code, status) => {
    const run = await runPlugin(rule(script(`echo "checked: status ${code}"\nexit ${code}`)), runOptions);
    expect(run).toMatchObject({ status, exitCode: code, timedOut: false, message: `checked: status ${code}` });
  });

  it('cuts the message to max_output_length bytes after trimming it, never inside a character', async () => {
    const long = await runPlugin(rule(script(`echo; echo "  $(printf 'x%.0s' $(seq 1 200))"; exit 1`)), runOptions);
    expect(long.message).toBe('x'.repeat(80));
    const accented = await runPlugin(rule(script(`printf '${'é'.repeat(50)}'; exit 1`)), { ...runOptions, maxOutputLength: 81 });
    expect(accented.message).toBe('é'.repeat(40));
    expect(cutBytes('abc', 0)).toBe('');
  });

  it('kills a plugin that outlives its timeout together with its children (the process group), and says so', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const hung = rule(script(`sleep 100 &\necho $! > ${pidFile}\necho waiting\nwait`), { timeoutMs: 300 });
    const run = await runPlugin(hung, runOptions);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(run).toMatchObject({ status: 'unknown', timedOut: true, signal: 'SIGKILL' });
    expect(run.message).toBe('timed out after 0.3s, process group killed; output: "waiting"');
    await expectEnded(grandchild);
  });

  it('keeps 4 KiB of the output and drains up to 1 MiB unbuffered, so a plugin with 512 KiB of diagnostics still counts by its exit status', async () => {
    const chatty = rule(script('yes nodepulse | head -c 524288\nexit 1'));
    const run = await runPlugin(chatty, runOptions);
    expect(run).toMatchObject({ status: 'problem', exitCode: 1, timedOut: false, stdoutBytes: 524_288, keptBytes: outputReadBytes });
    expect(run.message).toBe('nodepulse\n'.repeat(8));
  });

  it('a plugin that exits with output left unread past 1 MiB still counts by its exit status', async () => {
    const run = await runPlugin(rule(script(`yes nodepulse | head -c ${drainBytes + 100_000}\nexit 1`)), runOptions);
    expect(run).toMatchObject({ status: 'problem', exitCode: 1, timedOut: false });
  });

  it('stops reading a plugin that prints 200 MB at 1 MiB, so the agent stays bounded; its timeout then ends it', async () => {
    const flood = rule(script('yes nodepulse | head -c 200000000\nexit 1'), { timeoutMs: 500 });
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const run = await runPlugin(flood, { ...runOptions, maxOutputLength: 200 });
    clearInterval(sampler);
    expect(run).toMatchObject({ status: 'unknown', timedOut: true, keptBytes: outputReadBytes });
    expect(run.stdoutBytes).toBeGreaterThanOrEqual(drainBytes);
    // One pipe read past the limit at most (64 KiB).
    expect(run.stdoutBytes).toBeLessThanOrEqual(drainBytes + 65_536);
    expect(run.message).toMatch(/^timed out after 0.5s, process group killed, output past 1 MiB unread; output: "nodepulse/);
    // Draining it all grew the agent by 34 MiB; keeping it would take 190 MiB.
    expect(peak - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('runs the file itself with its args as they are (no shell), in the working directory, stdin empty', async () => {
    const run = await runPlugin(rule(script('printf "%s|%s|%s|" "$1" "$2" "$(pwd)"; cat; exit 0'), { args: ['$HOME', '; echo injected'] }), runOptions);
    expect(run.message).toBe(`$HOME|; echo injected|${dir}|`);
  });

  it("passes the agent's environment as NPD passes its own, without the agent's settings", async () => {
    const m = monitorOf(pluginSet([rule(script('echo "$NODE_NAME ${NODEPULSE__probes__cpu__enabled-unset} ${NODE_OPTIONS-unset}"; exit 1'))]), {
      PATH: process.env.PATH,
      NODE_NAME: 'node-a',
      NODEPULSE__probes__cpu__enabled: 'false',
      NODE_OPTIONS: '--max-old-space-size=64',
    });
    await m.monitor.runNow();
    expect(m.engine.get('TestProblem')?.message).toBe('node-a unset unset');
  });

  it('a plugin that cannot be started is Unknown with the reason', async () => {
    const gone = join(dir, 'removed.sh');
    const run = await runPlugin(rule(gone), { ...runOptions, maxOutputLength: 4096 });
    expect(run.status).toBe('unknown');
    expect(run.message).toMatch(/^cannot run .*removed.sh: spawn .* ENOENT/);
  });
});

describe('custom plugin monitor conditions and Events', () => {
  it("a permanent rule sets its condition: 0 the file's healthy default, 1 True with the plugin's output, 2 Unknown keeping the default reason (NPD's)", async () => {
    const codeFile = join(dir, 'code');
    writeFileSync(codeFile, '0');
    const m = monitorOf(pluginSet([rule(script(`echo "ntp offset checked (exit $(cat ${codeFile}))"\nexit $(cat ${codeFile})`))]));
    await m.monitor.runNow();
    expect(m.engine.get('TestProblem')).toMatchObject({ status: 'False', reason: 'TestIsFine', message: 'the test check passes' });

    writeFileSync(codeFile, '1');
    await m.monitor.runNow();
    expect(m.engine.get('TestProblem')).toMatchObject({ status: 'True', reason: 'TestIsBroken', message: 'ntp offset checked (exit 1)' });

    writeFileSync(codeFile, '2');
    await m.monitor.runNow();
    expect(m.engine.get('TestProblem')).toMatchObject({ status: 'Unknown', reason: 'TestIsFine', message: 'ntp offset checked (exit 2)' });

    writeFileSync(codeFile, '0');
    await m.monitor.runNow();
    expect(m.engine.get('TestProblem')).toMatchObject({ status: 'False', reason: 'TestIsFine', message: 'the test check passes' });
    expect(m.events.filter((e) => e.kind === 'transition').map((e) => `${e.severity} ${e.reason}`)).toEqual(['Warning TestIsBroken', 'Warning TestIsFine', 'Normal TestIsFine']);
  });

  it('a True condition keeps its first message while the reason stays, unless enable_message_change_based_condition_update', async () => {
    const counter = join(dir, 'count');
    const changing = () => script(`n=$(($(cat ${counter} 2>/dev/null || echo 0) + 1)); echo $n > ${counter}; echo "failure $n"; exit 1`);
    rmSync(counter, { force: true });
    const kept = monitorOf(pluginSet([rule(changing())]));
    await kept.monitor.runNow();
    await kept.monitor.runNow();
    expect(kept.engine.get('TestProblem')?.message).toBe('failure 1');

    rmSync(counter, { force: true });
    const updated = monitorOf(pluginSet([rule(changing())], { messageChangeUpdates: true }));
    await updated.monitor.runNow();
    await updated.monitor.runNow();
    expect(updated.engine.get('TestProblem')?.message).toBe('failure 2');
  });

  it('a temporary rule is an Event for exit 1 and above (NPD: ExitStatus >= NonOK), nothing for 0, and touches no condition', async () => {
    const temporary = (code: number) => rule(script(`echo "conntrack check ${code}"; exit ${code}`), { type: 'temporary', reason: `ConntrackFull${code}` });
    const m = monitorOf(pluginSet([temporary(0), temporary(1), temporary(2)]));
    await m.monitor.runNow();
    expect(m.events.map((e) => `${e.kind} ${e.reason}: ${e.message}`).sort()).toEqual(['temporary ConntrackFull1: conntrack check 1', 'temporary ConntrackFull2: conntrack check 2']);
    expect(m.engine.get('TestProblem')).toMatchObject({ status: 'False', reason: 'TestIsFine' });
  });

  it('runs at most `concurrency` plugins at once', async () => {
    const logFile = join(dir, 'concurrency.log');
    rmSync(logFile, { force: true });
    const slow = (name: string) => rule(script(`echo "start ${name}" >> ${logFile}\nsleep 0.5\necho "end ${name}" >> ${logFile}\nexit 0`), { type: 'temporary', reason: 'Slow' });
    const m = monitorOf(pluginSet([slow('a'), slow('b'), slow('c')], { concurrency: 1 }));
    await m.monitor.runNow();
    expect(readFileSync(logFile, 'utf8').match(/^start/gm)).toHaveLength(3);
    expect(mostAtOnce(logFile)).toBe(1);
  });

  it('does not start a rule again while its last run is still going (its next interval came too soon)', async () => {
    const logFile = join(dir, 'overlap.log');
    rmSync(logFile, { force: true });
    const m = monitorOf(pluginSet([rule(script(`echo start >> ${logFile}\nsleep 0.5\necho end >> ${logFile}\nexit 0`))]));
    // start() ran it once already; these come while it runs.
    await Promise.all([m.monitor.runNow(), m.monitor.runNow()]);
    expect(readFileSync(logFile, 'utf8')).toBe('start\nend\n');
  });

  it('stopping the monitor kills the plugins still running, with their children', async () => {
    const pidFile = join(dir, 'stopped-grandchild.pid');
    rmSync(pidFile, { force: true });
    const m = monitorOf(pluginSet([rule(script(`sleep 100 &\necho $! > ${pidFile}\nwait`))]));
    const deadline = Date.now() + 10_000;
    while (!(existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    loops.splice(0).forEach((loop) => loop.stop());
    await m.monitor.runNow();
    await expectEnded(grandchild);
  });
});
