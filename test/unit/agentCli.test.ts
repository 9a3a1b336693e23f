import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createUnixServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDnsServer } from '../support/dnsServer.js';

const run = promisify(execFile);
// The built CLI, as users run it (`npm test` builds first).
const cli = join(import.meta.dirname, '../../dist/agent/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'nodepulse-cli-'));
let dns: TestDnsServer;

/** Runs the agent CLI, never throwing on exit codes. */
async function agent(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * The timeouts are generous: a refused kubelet and a local DNS server answer at once, and on a
 * loaded CI machine a tight timeout read a late-scheduled answer as KubeletTimeout.
 */
function config(kubeletUrl: string): string {
  const path = join(dir, `config-${Math.random()}.yaml`);
  writeFileSync(
    path,
    [
      'probes:',
      '  kubelet:',
      `    url: ${kubeletUrl}`,
      '    timeoutMs: 5000',
      '  dns:',
      '    timeoutMs: 5000',
      '    checks:',
      `      - { name: LocalDNS, server: "${dns.address}", query: node.example, type: A }`,
      '  cpu: { someAvg10Percent: 100, utilisationPercent: 100, loadPerCore: 1000 }',
      '  diskSpace: { paths: [/] , usedPercent: 100, inodesUsedPercent: 100 }',
      '  diskIO: { someAvg10Percent: 100, fullAvg10Percent: 100 }',
      '  memory: { someAvg10Percent: 100, fullAvg10Percent: 100, availablePercent: 0, availableMiB: 0 }',
    ].join('\n'),
  );
  return path;
}

beforeAll(async () => {
  dns = await TestDnsServer.start({ records: { A: ['10.1.2.3'] } });
});
afterAll(async () => {
  await dns.stop();
});

describe('nodepulse-agent --once', () => {
  it('prints one row per probe and exits 1 when a check finds a problem', async () => {
    // Nothing listens on port 1: the kubelet check fails, everything else passes.
    const res = await agent(['--once', '--config', config('http://127.0.0.1:1/healthz')]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^\S+: .*kernel .* MiB memory, disks: /);
    expect(res.stdout).toMatch(/\nPROBE\s+STATUS\s+REASON/);
    expect(res.stdout).toMatch(/kubelet\s+PROBLEM\s+KubeletUnreachable/);
    expect(res.stdout).toMatch(/dns\s+OK/);
    expect(res.stdout).toMatch(/\n1 node problem found; 1 skipped\n$/);
  });

  it('says in the table that the konnectivity probe was skipped, and why, instead of a log line', async () => {
    const res = await agent(['--once', '--config', config('http://127.0.0.1:1/healthz')], { LOG_LEVEL: 'info' });
    expect(res.stdout).toMatch(/\nkonnectivity\s+SKIPPED\s+-\s+-\s+needs the API server: runs only with publish\.enabled: true\n/);
    expect(res.stderr).not.toContain('skipped');
  });

  it('prints JSON with a summary, the skipped probes and the figures of every probe, times in ISO 8601', async () => {
    const res = await agent(['--once', '--output', 'json', '--config', config('http://127.0.0.1:1/healthz')]);
    const report = JSON.parse(res.stdout) as {
      at: string;
      node: { cores: number };
      summary: Record<string, number>;
      skipped: Array<{ probe: string; why: string }>;
      results: Array<{ probe: string; status: string; at: string; healthy: boolean; figures: Record<string, unknown> }>;
    };
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    expect(report.at).toMatch(iso);
    expect(report.node.cores).toBeGreaterThan(0);
    expect(report.summary).toEqual({ checked: 7, ok: 6, problems: 1, agentProblems: 0, skipped: 1, exitCode: 1 });
    expect(report.skipped).toEqual([{ probe: 'konnectivity', why: 'needs the API server: runs only with publish.enabled: true' }]);
    expect(report.results.map((r) => r.probe).sort()).toEqual(['cpu', 'diskIO', 'diskSpace', 'dns', 'kubelet', 'memory', 'pid']);
    expect(report.results.find((r) => r.probe === 'kubelet')?.status).toBe('problem');
    for (const r of report.results) expect(r.at).toMatch(iso);
    expect(report.results.find((r) => r.probe === 'diskIO')?.figures.baseline).toBe(false);
  });

  it('shows an unreadable /proc (a wrong procRoot) as an agent problem, not a node problem, and exits 3', async () => {
    const kubelet = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => kubelet.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(kubelet.address() as AddressInfo).port}/healthz`;
      const res = await agent(['--once', '--config', config(url)], { NODEPULSE__procRoot: '/nonexistent/proc' });
      expect(res.code).toBe(3);
      for (const probe of ['cpu', 'diskIO', 'memory', 'pid']) {
        expect(res.stdout).toMatch(new RegExp(`\\n${probe}\\s+AGENT PROBLEM\\s+ProbeReadError\\s+\\d+ms\\s+cannot use /nonexistent/proc/`));
      }
      expect(res.stdout).toMatch(/kubelet\s+OK/);
      expect(res.stdout).toContain('\nno node problem found; 4 checks could not see the node (an agent problem, not the node\'s: see AGENT PROBLEM rows); 1 skipped\n');
    } finally {
      kubelet.close();
    }
  });

  it('waits for a container runtime that accepts and never answers, and reports it ContainerRuntimeUnresponsive', async () => {
    const socketPath = join(dir, `silent-${process.pid}.sock`);
    const silent = createUnixServer(() => {});
    await new Promise<void>((resolve) => silent.listen(socketPath, resolve));
    try {
      const path = config('http://127.0.0.1:1/healthz');
      writeFileSync(path, `${readFileSync(path, 'utf8')}\n  runtime: { enabled: true, socketPath: ${socketPath}, timeoutMs: 1000 }\n`);
      const res = await agent(['--once', '--config', path]);
      expect(res.code).toBe(1);
      expect(res.stdout).toMatch(/\nruntime\s+PROBLEM\s+ContainerRuntimeUnresponsive\s+\d+ms\s+.*did not answer within 1000 ms/);
    } finally {
      silent.close();
    }
  });

  it('exits 2 and names the field for a bad config, without a stack trace', async () => {
    const res = await agent(['--once'], { NODEPULSE__probes__cpu__someAvg10Percent: '250' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/probes\.cpu\.someAvg10Percent/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  // Settings that broke the agent (issue 15): each must stop it at start with exit 2 and the field named.
  const yaml = (text: string) => {
    const path = join(dir, `bad-${Math.random()}.yaml`);
    writeFileSync(path, text);
    return ['--config', path];
  };
  /** An NPD custom-plugin-monitor file, switched on: [the CLI's args, the file's path]. */
  const pluginFile = (content: object): [string[], string] => {
    const path = join(dir, `plugin-monitor-${Math.random()}.json`);
    writeFileSync(path, JSON.stringify({ plugin: 'custom', source: 'test-plugin-monitor', ...content }));
    return [yaml(`monitors:\n  customPlugins: { enabled: true, files: ["${path}"] }\n`), path];
  };
  const temporaryRule = { type: 'temporary', reason: 'TestProblem', path: '/bin/true' };
  const pluginRows = ([
    ['an NPD plugin file of another plugin', { plugin: 'filelog', rules: [] }, 'plugin: must be "custom" (a custom-plugin-monitor file)'],
    ['an NPD plugin file whose plugin is missing', { rules: [{ ...temporaryRule, path: '/nonexistent/check.sh' }] }, 'rules.0.path: "/nonexistent/check.sh" does not exist; install the plugin there or correct the path'],
    ['an NPD plugin file with a negative timeout', { pluginConfig: { timeout: '-5s' }, rules: [temporaryRule] }, 'pluginConfig.timeout: "-5s" must be above zero'],
    ['an NPD plugin file with a duration Go cannot parse', { pluginConfig: { invoke_interval: '30 seconds' }, rules: [temporaryRule] }, 'pluginConfig.invoke_interval: "30 seconds" is not a Go duration'],
  ] as Array<[string, object, string]>).map(([what, content, message]): [string, string[], Record<string, string>, string] => {
    const [args, path] = pluginFile(content);
    return [what, args, {}, `monitors.customPlugins.files.0: ${path}: ${message}`];
  });
  it.each([
    ['an interval that would spin a core', yaml('probes:\n  cpu: { intervalSeconds: 0.0001 }\n'), {}, 'probes.cpu.intervalSeconds: must be at least 1 (second)'],
    [
      'a stall period shorter than two probe intervals',
      yaml('server: { stallSeconds: 5 }\nprobes:\n  dns: { intervalSeconds: 30 }\n'),
      {},
      'server.stallSeconds: 5 s is under two intervals of the slowest probe (probes.dns.intervalSeconds 30 s)',
    ],
    ['a probes section that is not a mapping', yaml('probes: 5\n'), {}, 'probes: Invalid input: expected object, received number'],
    ['a probes section that is not a mapping, with the downward API set', yaml('probes: 5\n'), { POD_NAME: 'agent-x' }, 'probes: is 5, not a mapping, so POD_NAME cannot set'],
    ['a kubelet URL that is not http(s)', yaml('probes:\n  kubelet: { url: "file:///etc/passwd" }\n'), {}, 'probes.kubelet.url: must be an http:// or https:// URL'],
    [
      'a DNS timeout not below its interval',
      yaml('probes:\n  dns: { intervalSeconds: 1, timeoutMs: 2000 }\n'),
      {},
      'probes.dns.timeoutMs: 2000 ms is not below probes.dns.intervalSeconds (1 s)',
    ],
    ['a kubelet timeout not below its interval', yaml('probes:\n  kubelet: { intervalSeconds: 2, timeoutMs: 2000 }\n'), {}, 'probes.kubelet.timeoutMs: 2000 ms is not below'],
    ['a memory floor no node has', yaml('probes:\n  memory: { availableMiB: 1e308 }\n'), {}, 'probes.memory.availableMiB: must be at most 65536'],
    ['a log level that does not exist', [], { LOG_LEVEL: 'loud' }, 'LOG_LEVEL: "loud" is not a level; use one of fatal, error'],
    ['a bind address that is not an IP', yaml('server: { address: 999.1.1.1 }\n'), {}, 'server.address: must be an IP address'],
    ['a pod address that is every address', yaml('server: { podAddress: 0.0.0.0 }\n'), {}, "server.podAddress: 0.0.0.0 is every address; give the pod's own IP"],
    ['a pod address beside a bind-all address', [], { NODEPULSE__server__address: '0.0.0.0', POD_IP: '10.1.2.3' }, 'server.podAddress: not needed: server.address 0.0.0.0 already serves every address'],
    ['an empty --config', ['--config', ''], {}, '--config: the path is empty'],
    ['a relative procRoot', yaml('procRoot: host/proc\n'), {}, 'procRoot: must be an absolute path'],
    ['a mistyped environment value', [], { NODEPULSE__server__port: 'eighty' }, 'server.port: Invalid input: expected number, received string (set by NODEPULSE__server__port)'],
    ['a misspelt environment key', [], { NODEPULSE__probes__dns__enabeld: 'false' }, 'probes.dns: Unrecognized key: "enabeld"; remove it or check its spelling (keys: enabeld) (set by NODEPULSE__probes__dns__enabeld)'],
    ...pluginRows,
  ] as Array<[string, string[], Record<string, string>, string]>)('refuses %s: exit 2, the field named, no stack trace', async (_what, args, env, message) => {
    const res = await agent(['--once', ...args], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(res.stdout).toBe('');
  });

  it('--check-config says a valid config is valid and exits 0, and stops a bad one with exit 2 and the field named (the DaemonSet init container)', async () => {
    const good = await agent(['--check-config', '--config', config('http://127.0.0.1:1/healthz')]);
    expect(good).toMatchObject({ code: 0, stdout: expect.stringMatching(/: valid\n$/) });
    const bad = await agent(['--check-config'], { NODEPULSE__security__runAsUser: '0' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('security.runAsUser: must not be 0');
    expect(bad.stdout).toBe('');
  });

  it('refuses to publish without a node name, saying how to set it', async () => {
    const res = await agent(['--once'], { NODEPULSE__publish__enabled: 'true', NODE_NAME: '' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/NODE_NAME/);
  });

  it('rejects unknown flags with the usage', async () => {
    const res = await agent(['--bogus']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/Usage: nodepulse-agent/);
  });
});
