import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import { jsonLogger } from '../../common/log.js';
import { describe, expect, it } from 'vitest';
import type { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import type { EventRecorder } from '../../agent/publish/eventRecorder.js';
import { RebootOnRequest, bootIdPath } from '../../agent/reboot/rebootOnRequest.js';

const BOOT_A = '5b2c1e4a-8f0d-4c1b-9a7e-0d3f6b2a1c11';
const BOOT_B = 'e7a9d3c2-1b4f-4e6a-8c5d-2f1a0b9c8d22';

/** A /proc with this boot ID, and a boot time (btime) as the node's own clock reads it. */
function procOf(bootId: string | undefined, bootedAtOnNodeClock = Date.parse('2026-11-23T10:00:00Z')): string {
  const procRoot = mkdtempSync(join(tmpdir(), 'nodepulse-reboot-'));
  writeFileSync(join(procRoot, 'stat'), `cpu  1 2 3 4\nbtime ${bootedAtOnNodeClock / 1000}\nprocesses 10\n`);
  if (bootId !== undefined) {
    mkdirSync(join(procRoot, 'sys/kernel/random'), { recursive: true });
    writeFileSync(join(procRoot, bootIdPath), `${bootId}\n`);
  }
  return procRoot;
}

function agentOn(procRoot: string, code = 0) {
  const runs: string[][] = [];
  const events: Array<[string, string, string]> = [];
  const recorder = { record: (...e: [string, string, string]) => events.push(e), drain: async () => true } as unknown as EventRecorder;
  const watcher = new RebootOnRequest(
    {} as AgentKubeApi,
    { enabled: true, annotation: 'nodepulse.io/reboot-request', command: ['reboot-now'] },
    'node-a',
    procRoot,
    recorder,
    jsonLogger({ level: 'silent' }),
    async (command) => {
      runs.push([...command]);
      return { code, output: code === 0 ? '' : 'permission denied' };
    },
  );
  return { watcher, runs, events };
}

const node = (request?: string): V1Node => ({ metadata: { name: 'node-a', annotations: request ? { 'nodepulse.io/reboot-request': request } : {} } });

describe("reboot on the controller's request (agent provider)", () => {
  it('reboots once for a request naming the current boot, and says so in an event first', async () => {
    const { watcher, runs, events } = agentOn(procOf(BOOT_A));
    await watcher.consider(node(BOOT_A));
    await watcher.consider(node(BOOT_A));
    expect(runs).toEqual([['reboot-now']]);
    expect(events.map((e) => e[1])).toEqual(['RebootingOnRequest']);
    expect(events[0]?.[2]).toContain(BOOT_A);
  });

  it('with the node clock a minute behind the controller, the host reboots once and never again for that request', async () => {
    // The controller asks at 12:00:00 by its clock; the host reboots at 12:00:30, which its own
    // clock, a minute behind, records as 11:59:30: "booted before the request" by timestamps.
    const before = agentOn(procOf(BOOT_A, Date.parse('2026-11-23T10:00:00Z')));
    await before.watcher.consider(node(BOOT_A));
    expect(before.runs).toHaveLength(1);
    // After the reboot: a new boot ID, a new agent process, the annotation still on the Node.
    const after = agentOn(procOf(BOOT_B, Date.parse('2026-11-23T11:59:30Z')));
    await after.watcher.consider(node(BOOT_A));
    await after.watcher.consider(node(BOOT_A));
    expect(after.runs).toEqual([]);
    expect(after.events).toEqual([]);
  });

  it('a new request for the new boot is served again', async () => {
    const { watcher, runs } = agentOn(procOf(BOOT_B));
    await watcher.consider(node(BOOT_A));
    await watcher.consider(node(BOOT_B));
    expect(runs).toHaveLength(1);
  });

  it('refuses a request that is not a boot ID (a timestamp from an older controller), naming the annotation', async () => {
    const { watcher, runs, events } = agentOn(procOf(BOOT_A));
    await watcher.consider(node('2026-11-23T11:59:00Z'));
    expect(runs).toEqual([]);
    expect(events[0]).toEqual(['Warning', 'RebootRequestInvalid', expect.stringContaining('nodepulse.io/reboot-request')]);
  });

  it('does not reboot when it cannot read its boot ID, and says why', async () => {
    const procRoot = procOf(undefined);
    const { watcher, runs, events } = agentOn(procRoot);
    await watcher.consider(node(BOOT_A));
    expect(runs).toEqual([]);
    expect(events[0]).toEqual(['Warning', 'RebootBootIDUnreadable', expect.stringContaining(join(procRoot, bootIdPath))]);
    rmSync(procRoot, { recursive: true });
  });

  it('reports a reboot command that fails', async () => {
    const { watcher, events } = agentOn(procOf(BOOT_A), 1);
    await watcher.consider(node(BOOT_A));
    expect(events.map((e) => e[1])).toEqual(['RebootingOnRequest', 'RebootCommandFailed']);
    expect(events[1]?.[2]).toContain('permission denied');
  });

  it('does nothing for a node without a request', async () => {
    const { watcher, runs, events } = agentOn(procOf(BOOT_A));
    await watcher.consider(node());
    expect([runs, events]).toEqual([[], []]);
  });
});
