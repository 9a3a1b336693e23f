import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { AgentProcess, eventually, freeLoopbackPort, type AgentProcess as Agent } from '../support/agentProcess.js';

/**
 * The agent started as root (as the DaemonSet starts it, privileged) opens the kernel log and
 * then becomes security.runAsUser with no capability in any thread. Needs root to start as
 * root; the built CLI (`npm test` builds first).
 */
const asRoot = process.getuid?.() === 0;
const running: Agent[] = [];
afterEach(async () => {
  for (const agent of running.splice(0)) await agent.stop();
});

function threads(pid: number): Array<{ uid: string; capEff: string }> {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    return { uid: /^Uid:\s*(.*)$/m.exec(status)?.[1] ?? '', capEff: /^CapEff:\s*(\S+)$/m.exec(status)?.[1] ?? '' };
  });
}

async function startAgent(security: object): Promise<{ agent: Agent; port: number; work: string }> {
  const work = mkdtempSync(join(tmpdir(), 'nodepulse-privileges-'));
  chmodSync(work, 0o755);
  // A kernel log only root may open, holding a hung-task line of this boot.
  const kmsg = join(work, 'kmsg');
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  writeFileSync(kmsg, `3,1,${Math.round(uptime * 1e6)},-;INFO: task docker:1234 blocked for more than 120 seconds.\n`, { mode: 0o600 });
  const port = await freeLoopbackPort();
  const agent = AgentProcess.start(work, 'agent', {
    nodeName: 'node-a',
    server: { address: '127.0.0.1', port },
    security,
    monitors: { kernel: { enabled: true, kmsgPath: kmsg, builtin: ['kernel'] } },
    probes: { dns: { checks: [] }, kubelet: { enabled: false }, konnectivity: { enabled: false } },
  });
  running.push(agent);
  return { agent, port, work };
}

async function kernelDeadlock(port: number, agent: Agent): Promise<{ status: string; reason: string }> {
  return eventually(
    'KernelDeadlock on the agent endpoint',
    async () => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/conditions`)).json()) as { conditions: Array<{ type: string; status: string; reason: string }> };
      return body.conditions.find((c) => c.type === 'KernelDeadlock' && c.status !== 'False');
    },
    20_000,
    agent,
  );
}

describe.skipIf(!asRoot)('an agent started as root drops to security.runAsUser (as root: the DaemonSet runs it privileged)', () => {
  it('reads the root-only kernel log it opened first, then runs every thread as uid 1000 with no capability', async () => {
    const { agent, port, work } = await startAgent({ runAsUser: 1000, runAsGroup: 1000 });
    expect(await kernelDeadlock(port, agent)).toMatchObject({ status: 'True', reason: 'DockerHung' });
    const pid = Number(agent.logged('dropped root: running as security.runAsUser, without capabilities')[0]?.pid);
    expect(threads(pid).length).toBeGreaterThan(1);
    expect(threads(pid)).toEqual(threads(pid).map(() => ({ uid: '1000\t1000\t1000\t1000', capEff: '0000000000000000' })));
    rmSync(work, { recursive: true, force: true });
  });

  it('with runAsUser null it stays root (the agent-reboot overlay, whose nsenter needs it)', async () => {
    const { agent, port, work } = await startAgent({ runAsUser: null });
    expect(await kernelDeadlock(port, agent)).toMatchObject({ status: 'True' });
    expect(agent.logged('dropped root: running as security.runAsUser, without capabilities')).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  });
});

describe('security config', () => {
  const issues = (security: object) => {
    const parsed = agentConfigSchema.safeParse({ security });
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  it('refuses root as the user to drop to, and groups without a user', () => {
    expect(issues({ runAsUser: 0 })).toEqual(['security.runAsUser: must not be 0: set null to keep running as root']);
    expect(issues({ runAsGroup: 1000 })).toEqual([expect.stringMatching(/^security.runAsUser: is null, so runAsGroup and supplementaryGroups would not apply/)]);
    expect(issues({ runAsUser: -1 })).toEqual([expect.stringMatching(/^security.runAsUser: /)]);
    expect(issues({ runAsUser: 1000, supplementaryGroups: [0] })).toEqual([]);
  });
});
