import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import type { EventRecorder } from '../../agent/publish/eventRecorder.js';
import { RebootOnRequest } from '../../agent/reboot/rebootOnRequest.js';

const bootedAt = Date.parse('2026-11-23T10:00:00Z');
const procRoot = mkdtempSync(join(tmpdir(), 'nodepulse-reboot-'));
writeFileSync(join(procRoot, 'stat'), `cpu  1 2 3 4\nbtime ${bootedAt / 1000}\nprocesses 10\n`);

function setup(now = Date.parse('2026-11-23T12:00:00Z'), code = 0) {
  const runs: string[][] = [];
  const events: Array<[string, string, string]> = [];
  const recorder = { record: (...e: [string, string, string]) => events.push(e), drain: async () => true } as unknown as EventRecorder;
  const watcher = new RebootOnRequest(
    {} as AgentKubeApi,
    { enabled: true, annotation: 'nodepulse.io/reboot-request', command: ['reboot-now'], maxRequestAgeSeconds: 3600 },
    'node-a',
    procRoot,
    recorder,
    pino({ level: 'silent' }),
    async (command) => {
      runs.push([...command]);
      return { code, output: code === 0 ? '' : 'permission denied' };
    },
    () => now,
  );
  return { watcher, runs, events };
}

const node = (request?: string): V1Node => ({ metadata: { name: 'node-a', annotations: request ? { 'nodepulse.io/reboot-request': request } : {} } });

describe('reboot on the controller\'s request (agent provider)', () => {
  it('reboots once for a request newer than the last boot, and says so in an event first', async () => {
    const { watcher, runs, events } = setup();
    await watcher.consider(node('2026-11-23T11:59:00Z'));
    await watcher.consider(node('2026-11-23T11:59:00Z'));
    expect(runs).toEqual([['reboot-now']]);
    expect(events.map((e) => e[1])).toEqual(['RebootingOnRequest']);
  });

  it('a new request after the first is served again', async () => {
    const { watcher, runs } = setup();
    await watcher.consider(node('2026-11-23T11:50:00Z'));
    await watcher.consider(node('2026-11-23T11:59:00Z'));
    expect(runs).toHaveLength(2);
  });

  it('never repeats a request the host has already rebooted for, even after an agent restart', async () => {
    const { watcher, runs, events } = setup();
    await watcher.consider(node('2026-11-23T09:59:00Z'));
    expect(runs).toEqual([]);
    expect(events).toEqual([]);
  });

  it('ignores a request older than the maximum age, with an event saying why', async () => {
    const { watcher, runs, events } = setup(Date.parse('2026-11-23T14:00:00Z'));
    await watcher.consider(node('2026-11-23T11:00:00Z'));
    expect(runs).toEqual([]);
    expect(events[0]?.[1]).toBe('RebootRequestStale');
  });

  it('refuses a request that is not a timestamp, naming the annotation', async () => {
    const { watcher, runs, events } = setup();
    await watcher.consider(node('now please'));
    expect(runs).toEqual([]);
    expect(events[0]).toEqual(['Warning', 'RebootRequestInvalid', expect.stringContaining('nodepulse.io/reboot-request')]);
  });

  it('reports a reboot command that fails', async () => {
    const { watcher, events } = setup(undefined, 1);
    await watcher.consider(node('2026-11-23T11:59:00Z'));
    expect(events.map((e) => e[1])).toEqual(['RebootingOnRequest', 'RebootCommandFailed']);
    expect(events[1]?.[2]).toContain('permission denied');
  });

  it('does nothing for a node without a request', async () => {
    const { watcher, runs, events } = setup();
    await watcher.consider(node());
    expect([runs, events]).toEqual([[], []]);
  });
});
