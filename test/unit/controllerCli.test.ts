import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
// The built CLI, as users run it (`npm test` builds first).
const cli = join(import.meta.dirname, '../../dist/controller/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'nodepulse-controller-cli-'));

/** Runs the controller CLI with only the environment given, never throwing on exit codes. */
async function controller(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('controller CLI: where it finds the API server', () => {
  it('a kubeconfig it cannot read is one line naming the file, not a stack trace', async () => {
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `kubeconfig: ${join(dir, 'missing.kubeconfig')}\n`);
    const r = await controller(['--config', config, '--metrics-port', '0', '--metrics-address', '127.0.0.1'], { HOME: dir });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^nodepulse-controller: kubeconfig .*missing\.kubeconfig: ENOENT/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('with no kubeconfig anywhere and not in a pod, it says how to point it at a cluster', async () => {
    const r = await controller(['--metrics-port', '0', '--metrics-address', '127.0.0.1'], { HOME: dir });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'nodepulse-controller: not running in a cluster (KUBERNETES_SERVICE_HOST is unset): set kubeconfig in the config or KUBECONFIG to run off-cluster',
    );
  });
});
