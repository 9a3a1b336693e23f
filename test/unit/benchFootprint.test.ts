import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../bench/support/benchOptions.js';
import { footprintFigures, type Sample } from '../../bench/support/footprintSampler.js';
import { builtinsLoadedBy } from '../../bench/support/nodeFloor.js';
import { parseStat, sampleTree } from '../../bench/support/processTree.js';

const MiB = 1024;

function sample(at: number, rssMiB: number, cpuSeconds: number): Sample {
  const rssKiB = rssMiB * MiB;
  return { at, rssKiB, peakRssKiB: 90 * MiB, anonKiB: rssKiB / 2, fileKiB: rssKiB / 2, treeRssKiB: rssKiB, cpuSeconds, descendants: 0 };
}

describe('footprint benchmark figures', () => {
  it("the Node-floor row loads the builtins the agent's modules import at start, as they load them (an ESM import or createRequire), and not the lazy import()s", () => {
    const dir = mkdtempSync(join(tmpdir(), 'floor-'));
    try {
      mkdirSync(join(dir, 'probes'));
      writeFileSync(join(dir, 'cli.js'), "import { parseArgs } from 'node:util';\nimport { Agent } from './agent.js';\nimport './probes/dns.js';\nexport { x } from './agent.js';\nimport {\n  open,\n} from \"fs\";\n");
      writeFileSync(join(dir, 'agent.js'), "import { createRequire } from 'node:module';\nexport const http = createRequire(import.meta.url)('node:http');\nimport * as dns from 'dns-packet';\nexport class Agent {}\n");
      writeFileSync(join(dir, 'probes', 'dns.js'), "import { createSocket } from 'node:dgram';\nimport { Agent } from '../agent.js';\nconst http2 = () => import('node:http2');\n");
      expect(builtinsLoadedBy(join(dir, 'cli.js'))).toEqual([
        { name: 'node:dgram', how: 'import' },
        { name: 'node:fs', how: 'import' },
        { name: 'node:http', how: 'require' },
        { name: 'node:module', how: 'import' },
        { name: 'node:util', how: 'import' },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads CPU ticks and parent from a stat line whose command name holds spaces and parentheses', () => {
    const line = '4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 1 0 100 1000 50';
    expect(parseStat(line)).toEqual({ pid: 4242, ppid: 17, ownTicks: 300, reapedChildTicks: 50 });
  });

  it('takes steady RSS as the median of the second half, so a start-up bump does not count', () => {
    const samples = [sample(0, 200, 0), sample(1, 200, 0), sample(2, 50, 0), sample(3, 52, 0), sample(4, 51, 0)];
    expect(footprintFigures(samples, 0).steadyRssMiB).toBe(51);
  });

  it('scales CPU time after warm-up to an hour and reports warm-up CPU apart', () => {
    const samples = [sample(0, 50, 0), sample(20, 50, 2), sample(40, 50, 2.5), sample(380, 50, 3)];
    const figures = footprintFigures(samples, 20);
    expect(figures.warmupCpuSeconds).toBe(2);
    expect(figures.cpuSecondsPerHour).toBe(10);
    expect(figures.peakRssMiB).toBe(90);
  });

  it('counts the CPU time of a child process that has exited and been reaped', async () => {
    // Burns 300 ms of CPU time, not of wall time, so a busy machine cannot make it burn less.
    const burn = `${process.execPath} -e "while (process.cpuUsage().user < 300000);"`;
    const shell = spawn('sh', ['-c', `${burn}; exec sleep 10`], { stdio: 'ignore' });
    try {
      const pid = shell.pid as number;
      // After `exec sleep` the shell's pid runs sleep, and the burner has been reaped.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sleep') {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const usage = sampleTree(pid, 100);
      expect(usage?.descendants).toBe(0);
      expect(usage?.cpuSeconds).toBeGreaterThanOrEqual(0.25);
      expect(usage?.rssKiB).toBeGreaterThan(0);
    } finally {
      shell.kill();
    }
  });

  it('accepts run lengths in seconds, minutes or hours and names the flag when one is wrong', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('60s')).toBe(60);
    expect(parseDuration('10m')).toBe(600);
    expect(() => parseDuration('ten minutes')).toThrow(/--duration: "ten minutes" is not a duration/);
    expect(() => parseDuration('5s')).toThrow(/at least 10s/);
  });
});
