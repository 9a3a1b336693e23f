import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/config/agentConfig.js';
import { configCheckArgs } from '../../agent/config/isolatedConfigLoader.js';
import { ConfigError } from '../../common/config/configError.js';

const dir = mkdtempSync(join(tmpdir(), 'nodepulse-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('agent configuration', () => {
  it('runs standalone with no file: every probe on, generic profile, endpoint on loopback', () => {
    const config = loadAgentConfig(undefined, {});
    expect(config.profile).toBe('generic');
    expect(config.server).toMatchObject({ address: '127.0.0.1', port: 20258 });
    expect(config.probes.cpu).toMatchObject({ enabled: true, intervalSeconds: 10, failureThreshold: 3, recoveryThreshold: 2 });
    expect(config.probes.dns.checks).toEqual([]);
    expect(config.publish.enabled).toBe(false);
  });

  it('reads YAML and keeps defaults for what the file leaves out', () => {
    const config = loadAgentConfig(file('a.yaml', 'profile: azure\nprobes:\n  cpu:\n    someAvg10Percent: 60\n'), {});
    expect(config.profile).toBe('azure');
    expect(config.probes.cpu.someAvg10Percent).toBe(60);
    expect(config.probes.cpu.intervalSeconds).toBe(10);
  });

  it('environment overrides win over the file and are typed', () => {
    const config = loadAgentConfig(file('b.yaml', 'server:\n  port: 9000\n'), {
      NODEPULSE__server__port: '9100',
      NODEPULSE__probes__dns__enabled: 'false',
      NODE_NAME: '12345',
    });
    expect(config.server.port).toBe(9100);
    expect(config.probes.dns.enabled).toBe(false);
    expect(config.nodeName).toBe('12345');
  });

  it('names the field and the problem for a wrong value', () => {
    const err = errorOf(() => loadAgentConfig(file('c.yaml', 'probes:\n  cpu:\n    someAvg10Percent: 150\n'), {}));
    expect(err.message).toMatch(/probes\.cpu\.someAvg10Percent: .*100/);
  });

  it('names a misspelt key and says to remove or fix it', () => {
    const err = errorOf(() => loadAgentConfig(file('d.yaml', 'probes:\n  cpu:\n    someAvg10Percnt: 50\n'), {}));
    expect(err.message).toMatch(/probes\.cpu.*someAvg10Percnt/);
    expect(err.message).toMatch(/remove it or check its spelling/);
  });

  it('names a bad environment override', () => {
    const err = errorOf(() => loadAgentConfig(undefined, { NODEPULSE__server__port: 'eighty' }));
    expect(err.message).toMatch(/server\.port/);
    expect(err.message).toMatch(/environment/);
  });

  it('reports an unreadable or malformed file instead of crashing', () => {
    expect(errorOf(() => loadAgentConfig(join(dir, 'missing.yaml'), {})).message).toMatch(/cannot read .*missing\.yaml/);
    expect(errorOf(() => loadAgentConfig(file('e.yaml', 'probes: [unclosed'), {})).message).toMatch(/not valid YAML/);
    expect(errorOf(() => loadAgentConfig(file('f.yaml', '- a\n- b\n'), {})).message).toMatch(/must be a mapping/);
  });
});

describe('the config check child', () => {
  it("runs with the agent's own Node flags (the DaemonSet's memory flags), without the inspector whose port the agent holds", () => {
    const flags = ['--max-semi-space-size=1', '--lite-mode', '--no-node-snapshot', '--inspect=127.0.0.1:9229', '--debug-port=9230'];
    expect(configCheckArgs(flags, '/app/dist/agent/cli.js', '/etc/nodepulse/agent.yaml')).toEqual([
      '--max-semi-space-size=1', '--lite-mode', '--no-node-snapshot', '/app/dist/agent/cli.js', '--check-config-json', '--config', '/etc/nodepulse/agent.yaml',
    ]);
    expect(configCheckArgs([], '/app/dist/agent/cli.js', undefined)).toEqual(['/app/dist/agent/cli.js', '--check-config-json']);
  });
});
