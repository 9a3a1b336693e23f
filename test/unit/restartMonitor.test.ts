import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLogger } from '../../common/log.js';
import { afterEach, describe, expect, it } from 'vitest';
import { RestartMonitor, startTicks } from '../../agent/monitors/restartMonitor.js';

const log = jsonLogger({ level: 'silent' });
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

const options = { procRoot: '/proc', intervalMs: 1000, windowMs: 20 * 60_000, count: 5, rescanMs: 60_000 };

/** A process with a name of its own (its comm), so no other process on this machine is counted. */
function namedProcess(dir: string, name: string): () => Promise<ChildProcess> {
  const binary = join(dir, name);
  copyFileSync('/bin/sleep', binary);
  return async () => {
    const child = spawn(binary, ['600'], { stdio: 'ignore' });
    children.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    return child;
  };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('frequent restarts, from process start times in /proc (no journald, no spawning)', () => {
  it('reads the start time from a stat line whose process name holds spaces and parentheses', () => {
    const stat = '1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345678 500';
    expect(startTicks(stat)).toBe(987654);
  });

  it('raises FrequentKubeletRestart on the fifth start of the process within the window, on this machine\'s real /proc', async () => {
    const name = `nprst${process.pid % 100000}`;
    const start = namedProcess(mkdtempSync(join(tmpdir(), 'nodepulse-restarts-')), name);
    const monitor = new RestartMonitor([{ condition: 'FrequentKubeletRestart', process: name }], options, log);
    let child = await start();
    const verdicts: string[] = [];
    for (let restart = 0; restart < 5; restart++) {
      const [result] = await monitor.sample();
      verdicts.push(`${result?.healthy ? 'ok' : 'problem'}:${result?.figures.starts}`);
      await stop(child);
      child = await start();
    }
    const [fifth] = await monitor.sample();
    expect(verdicts).toEqual(['ok:1', 'ok:2', 'ok:3', 'ok:4', 'problem:5']);
    expect(fifth).toMatchObject({ healthy: false, reason: 'FrequentKubeletRestart', probe: 'restarts/FrequentKubeletRestart' });
    expect(fifth?.message).toMatch(new RegExp(`^${name} started 6 times in the last 20 min`));
  });

  it('scans /proc only when a followed process is gone (a PID reused by another process counts as gone)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodepulse-restarts-fixture-'));
    const proc = (pid: number, comm: string, ticks: number) => {
      mkdirSync(join(dir, String(pid)), { recursive: true });
      writeFileSync(join(dir, String(pid), 'comm'), `${comm}\n`);
      writeFileSync(join(dir, String(pid), 'stat'), `${pid} (${comm}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${ticks} 1 1`);
    };
    writeFileSync(join(dir, 'uptime'), '1000.00 10.00\n');
    proc(10, 'containerd', 50_000);
    proc(11, 'containerd-shim', 50_100);
    const monitor = new RestartMonitor([{ condition: 'FrequentContainerdRestart', process: 'containerd' }], { ...options, procRoot: dir }, log);
    expect((await monitor.sample())[0]?.figures).toMatchObject({ starts: 1, running: [10] });
    // Another process appears under the name: not looked for while pid 10 lives.
    proc(12, 'containerd', 60_000);
    expect((await monitor.sample())[0]?.figures).toMatchObject({ starts: 1, running: [10] });
    // pid 10 now belongs to something else (another start time): a restart, found by the scan.
    proc(10, 'containerd', 70_000);
    expect((await monitor.sample())[0]?.figures).toMatchObject({ starts: 3, running: [10, 12] });
  });

  it('walks /proc once a sample for both kubelet and containerd, finding each under its own name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodepulse-restarts-both-'));
    writeFileSync(join(dir, 'uptime'), '1000.00 10.00\n');
    const scans: string[] = [];
    const counting = jsonLogger({ level: 'debug', destination: { write: (line: string) => void (JSON.parse(line).msg === 'scanned /proc for the watched processes' && scans.push(line)) } });
    const watches = [
      { condition: 'FrequentKubeletRestart', process: 'kubelet' },
      { condition: 'FrequentContainerdRestart', process: 'containerd' },
    ];
    const monitor = new RestartMonitor(watches, { ...options, procRoot: dir, rescanMs: 0 }, counting);
    expect((await monitor.sample()).map((r) => r.figures.running)).toEqual([[], []]);
    expect(scans).toHaveLength(1);
    mkdirSync(join(dir, '20'));
    writeFileSync(join(dir, '20', 'comm'), 'kubelet\n');
    writeFileSync(join(dir, '20', 'stat'), '20 (kubelet) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 90000 1 1');
    expect((await monitor.sample()).map((r) => r.figures.running)).toEqual([[20], []]);
    expect(scans).toHaveLength(2);
  });

  it('clears when the starts fall out of the window', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodepulse-restarts-window-'));
    mkdirSync(join(dir, '10'));
    writeFileSync(join(dir, '10/comm'), 'kubelet\n');
    writeFileSync(join(dir, '10/stat'), '10 (kubelet) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100000 1 1');
    writeFileSync(join(dir, 'uptime'), '1100.00 10.00\n');
    const monitor = new RestartMonitor([{ condition: 'FrequentKubeletRestart', process: 'kubelet' }], { ...options, procRoot: dir, count: 1, windowMs: 600_000 }, log);
    expect((await monitor.sample())[0]).toMatchObject({ healthy: false, reason: 'FrequentKubeletRestart' });
    writeFileSync(join(dir, 'uptime'), '1601.00 10.00\n');
    expect((await monitor.sample())[0]).toMatchObject({ healthy: true, reason: 'NoFrequentKubeletRestart' });
  });

  it('reports ProbeReadError, not a node problem, when /proc is not there', async () => {
    const monitor = new RestartMonitor([{ condition: 'FrequentKubeletRestart', process: 'kubelet' }], { ...options, procRoot: '/nonexistent' }, log);
    expect((await monitor.sample())[0]).toMatchObject({ healthy: false, reason: 'ProbeReadError' });
  });
});
