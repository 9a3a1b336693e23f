import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/config/agentConfig.js';
import { buildProbes } from '../../agent/probes/registry.js';
import { ConfigError } from '../../common/config/configError.js';

const dir = mkdtempSync(join(tmpdir(), 'nodepulse-runtime-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const path = join(dir, 'agent.yaml');
  writeFileSync(path, yaml);
  return loadAgentConfig(path, {});
}

function errorOf(yaml: string): string {
  try {
    load(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('probes.runtime configuration', () => {
  it("is off by default (it needs the runtime's socket mounted into the agent) and on with containerd's socket when enabled", () => {
    expect(loadAgentConfig(undefined, {}).probes.runtime).toMatchObject({ enabled: false, socketPath: '/run/containerd/containerd.sock', timeoutMs: 5000, intervalSeconds: 10 });
    expect(buildProbes(loadAgentConfig(undefined, {})).probes.map((p) => p.name)).not.toContain('runtime');
    const probe = buildProbes(load('probes:\n  runtime:\n    enabled: true\n')).probes.find((p) => p.name === 'runtime');
    // The sample outlasts the call's deadline, so ContainerRuntimeUnresponsive comes before a cancelled sample.
    expect(probe?.sampleTimeoutMs).toBeGreaterThan(5000);
  });

  it('names the field and the fix for a relative or too long socket path and a timeout not below the interval', () => {
    expect(errorOf('probes:\n  runtime:\n    socketPath: run/containerd.sock\n')).toMatch(/probes\.runtime\.socketPath: must be an absolute path/);
    expect(errorOf(`probes:\n  runtime:\n    socketPath: /${'s'.repeat(107)}\n`)).toMatch(/probes\.runtime\.socketPath: must be at most 107 bytes: .*mount the socket at a shorter path/);
    expect(errorOf('probes:\n  runtime:\n    enabled: true\n    intervalSeconds: 2\n    timeoutMs: 2000\n')).toMatch(
      /probes\.runtime\.timeoutMs: 2000 ms is not below probes\.runtime\.intervalSeconds \(2 s\); lower the timeout or sample less often/,
    );
  });
});
