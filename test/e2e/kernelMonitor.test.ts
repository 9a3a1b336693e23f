import { randomUUID } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type CoreV1Event, type V1NodeCondition } from '@kubernetes/client-node';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testCluster } from '../cluster/testCluster.js';
import { AgentProcess, eventually, freeLoopbackPort } from '../support/agentProcess.js';
import { onlyProbes } from '../support/onlyProbes.js';

/**
 * The kernel monitor end to end: lines written to the kernel log, conditions and Events on a
 * real API server, written by the agent as its ServiceAccount. As root the lines go into the
 * real kernel ring buffer through /dev/kmsg (`<3>nodepulse-test: ...`, as user space may log);
 * elsewhere a fixture file stands in, and the test names say so.
 */
const cluster = testCluster();
const core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
const repo = join(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'nodepulse-e2e-kmsg-'));
const asRoot = process.getuid?.() === 0;
const logName = asRoot ? 'the real /dev/kmsg' : 'a fixture file standing in for /dev/kmsg (not root)';
const fixtureKmsg = join(work, 'kmsg');
/** This run's word in every line, so no other agent's rules and no earlier run's lines match ours. */
const nonce = randomUUID().slice(0, 8);

let agentKubeconfig: string;
let agent: AgentProcess | undefined;
let seq = 0;

/** One kernel log line, as user space writes it (priority 3, err). */
function kernelLine(text: string): void {
  if (asRoot) writeFileSync('/dev/kmsg', `<3>nodepulse-test: ${text}\n`);
  else {
    seq += 1;
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    appendFileSync(fixtureKmsg, `11,${seq},${Math.round(uptime * 1e6)},-;nodepulse-test: ${text}\n`);
  }
}

/**
 * A rule file in NPD's format whose patterns carry this run's nonce and the node's name: every
 * test's lines stay in the 5 min lookback, and no other test's agent may replay them.
 */
function ruleFile(node: string): string {
  const tag = `${nonce} ${node}`;
  const file = join(work, `${node}-monitor.json`);
  writeFileSync(
    file,
    JSON.stringify({
      plugin: 'kmsg',
      logPath: '/dev/kmsg',
      lookback: '5m',
      bufferSize: 10,
      source: 'nodepulse-test-monitor',
      conditions: [{ type: 'NodepulseTestDeadlock', reason: 'NoTestDeadlock', message: 'no test deadlock' }],
      rules: [
        { type: 'permanent', condition: 'NodepulseTestDeadlock', reason: 'TestTaskHung', pattern: `nodepulse-test: ${tag} task \\S+ blocked for more than \\d+ seconds\\.` },
        { type: 'permanent', condition: 'NodepulseTestDeadlock', reason: 'TestTaskStillHung', pattern: `nodepulse-test: ${tag} still blocked` },
        { type: 'temporary', reason: 'TestOOMKilling', pattern: `nodepulse-test: ${tag} Killed process \\d+ \\((.+)\\)` },
      ],
    }),
  );
  return file;
}

/** A /proc that is the host's but for the boot ID (a "reboot" without one). */
function procWithBootId(bootId: string): string {
  const dir = join(work, `proc-${bootId.slice(0, 8)}`);
  mkdirSync(join(dir, 'sys/kernel/random'), { recursive: true });
  mkdirSync(join(dir, 'self'), { recursive: true });
  writeFileSync(join(dir, 'sys/kernel/random/boot_id'), `${bootId}\n`);
  copyFileSync('/proc/uptime', join(dir, 'uptime'));
  copyFileSync('/proc/self/mountinfo', join(dir, 'self/mountinfo'));
  return dir;
}

async function createNode(name: string): Promise<void> {
  await core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/os': 'linux' } } } });
}

async function startAgent(node: string, overrides: { procRoot?: string; kmsgPath?: string } = {}): Promise<AgentProcess> {
  agent = AgentProcess.start(work, `${node}-${Date.now()}`, {
    nodeName: node,
    kubeconfig: agentKubeconfig,
    procRoot: overrides.procRoot ?? '/proc',
    server: { address: '127.0.0.1', port: await freeLoopbackPort() },
    publish: { enabled: true, heartbeatSeconds: 300, backoffMaxSeconds: 2 },
    probes: onlyProbes({}),
    monitors: {
      kernel: { enabled: true, kmsgPath: overrides.kmsgPath ?? (asRoot ? '/dev/kmsg' : fixtureKmsg), builtin: ['readonly'], ruleFiles: [ruleFile(node)], readonlyPaths: ['/'], mountCheckSeconds: 2 },
    },
  });
  return agent;
}

async function condition(node: string, type: string): Promise<V1NodeCondition | undefined> {
  return (await core.readNode({ name: node })).status?.conditions?.find((c) => c.type === type);
}

async function conditionWith(node: string, type: string, a: AgentProcess, want: (c: V1NodeCondition) => boolean, timeoutMs = 15_000): Promise<V1NodeCondition> {
  return eventually(`${type} on ${node}`, async () => {
    const c = await condition(node, type);
    return c && want(c) ? c : undefined;
  }, timeoutMs, a);
}

async function events(node: string, reason: string): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node},reason=${reason}` });
  return list.items;
}

beforeAll(async () => {
  await cluster.kubectl(['apply', '-f', join(repo, 'manifests/base/namespace.yaml'), '-f', join(repo, 'manifests/base/agent-rbac.yaml')]);
  agentKubeconfig = await cluster.serviceAccountKubeconfig('nodepulse', 'nodepulse-agent');
  if (!asRoot) writeFileSync(fixtureKmsg, '');
});

afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

describe(`kernel log monitor on ${logName}`, () => {
  it('a hung-task line raises its rule-file condition on the Node with a Warning Event; another reason for it leaves lastTransitionTime alone', async () => {
    const node = 'e2e-kmsg-raise';
    await createNode(node);
    const a = await startAgent(node);
    await conditionWith(node, 'NodepulseTestDeadlock', a, (c) => c.status === 'False' && c.reason === 'NoTestDeadlock');

    const writtenAt = Date.now();
    kernelLine(`${nonce} ${node} task dockerd:1234 blocked for more than 120 seconds.`);
    const raised = await conditionWith(node, 'NodepulseTestDeadlock', a, (c) => c.status === 'True');
    const latencyMs = Date.now() - writtenAt;
    expect(raised.reason).toBe('TestTaskHung');
    expect(raised.message).toMatch(new RegExp(`nodepulse-test: ${nonce} ${node} task dockerd:1234 blocked for more than 120 seconds\\. \\[boot [0-9a-f-]{36} seq \\d+\\]$`));
    expect(latencyMs).toBeLessThan(5000);
    const warning = await eventually('the transition Event', async () => (await events(node, 'TestTaskHung')).find((e) => e.type === 'Warning'), 10_000, a);
    expect(warning.source?.component).toBe('nodepulse-agent');

    // The API keeps whole seconds: wait past the transition's second so a moved time would show.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    kernelLine(`${nonce} ${node} still blocked`);
    const flipped = await conditionWith(node, 'NodepulseTestDeadlock', a, (c) => c.reason === 'TestTaskStillHung');
    expect(flipped.status).toBe('True');
    expect(flipped.lastTransitionTime).toEqual(raised.lastTransitionTime);
  });

  it('a one-off line (a temporary rule) is an Event on the Node and no condition', async () => {
    const node = 'e2e-kmsg-event';
    await createNode(node);
    const a = await startAgent(node);
    await conditionWith(node, 'NodepulseTestDeadlock', a, (c) => c.reason === 'NoTestDeadlock');
    kernelLine(`${nonce} ${node} Killed process 4242 (stress-ng)`);
    const oom = await eventually('the OOM Event', async () => (await events(node, 'TestOOMKilling'))[0], 10_000, a);
    expect(oom).toMatchObject({ type: 'Warning', source: { component: 'nodepulse-agent' } });
    expect(oom.message).toContain('Killed process 4242 (stress-ng)');
    expect((await condition(node, 'NodepulseTestDeadlock'))?.status).toBe('False');
  });

  it('ReadonlyFilesystem from a kernel line clears by itself once the mounts are read-write (RemountedReadWrite), where NPD keeps it True', async () => {
    const node = 'e2e-kmsg-readonly';
    await createNode(node);
    const a = await startAgent(node);
    // Another run's read-only line may be in the lookback, replayed and cleared at start: wait
    // until the condition has been False for longer than a mount check.
    await conditionWith(node, 'ReadonlyFilesystem', a, (c) => c.status === 'False');
    await eventually('ReadonlyFilesystem to stay False over a mount check', async () => {
      await new Promise((resolve) => setTimeout(resolve, 2500));
      return (await condition(node, 'ReadonlyFilesystem'))?.status === 'False' ? true : undefined;
    }, 20_000, a);
    // No such device: the checked path (/) decides, and this machine's / is read-write.
    kernelLine(`EXT4-fs (np${nonce}): Remounting filesystem read-only`);
    const raised = await conditionWith(node, 'ReadonlyFilesystem', a, (c) => c.status === 'True' && c.message?.includes(nonce) === true);
    expect(raised.reason).toBe('FilesystemIsReadOnly');
    const cleared = await conditionWith(node, 'ReadonlyFilesystem', a, (c) => c.status === 'False' && c.message?.includes(nonce) === true);
    expect(cleared.reason).toBe('RemountedReadWrite');
    expect(cleared.message).toMatch(/mounted read-write again: \/ \(\d+:\d+, .*\) rw/);
    await eventually('the clearing Event', async () => (await events(node, 'RemountedReadWrite')).find((e) => e.type === 'Normal'), 10_000, a);
  });

  it('an agent restart in the same boot keeps the condition with no second transition; a new boot ID clears it (ClearedByReboot)', async () => {
    const node = 'e2e-kmsg-reboot';
    await createNode(node);
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const first = await startAgent(node, { procRoot: procWithBootId(bootId) });
    await conditionWith(node, 'NodepulseTestDeadlock', first, (c) => c.reason === 'NoTestDeadlock');
    kernelLine(`${nonce} ${node} task kworker/0:1:77 blocked for more than 240 seconds.`);
    const raised = await conditionWith(node, 'NodepulseTestDeadlock', first, (c) => c.status === 'True');
    await eventually('the transition Event', async () => (await events(node, 'TestTaskHung'))[0], 10_000, first);
    await first.stop();

    // Same boot: the line is in the lookback again, and already on the Node.
    const second = await startAgent(node, { procRoot: procWithBootId(bootId) });
    await eventually('the restarted agent adopting its conditions', async () => (second.logged('adopted node conditions').length > 0 ? true : undefined), 15_000, second);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const kept = await condition(node, 'NodepulseTestDeadlock');
    expect(kept).toMatchObject({ status: 'True', reason: 'TestTaskHung', lastTransitionTime: raised.lastTransitionTime });
    const transitions = await events(node, 'TestTaskHung');
    expect(transitions.reduce((sum, e) => sum + (e.count ?? 1), 0)).toBe(1);
    await second.stop();

    // After a reboot: another boot ID, and a new, empty kernel log (the old ring buffer is gone).
    const newLog = join(work, 'kmsg-after-reboot');
    writeFileSync(newLog, '');
    const third = await startAgent(node, { procRoot: procWithBootId('00000000-0000-4000-8000-00000000b007'), kmsgPath: newLog });
    const cleared = await conditionWith(node, 'NodepulseTestDeadlock', third, (c) => c.status === 'False');
    expect(cleared.reason).toBe('ClearedByReboot');
    expect(cleared.message).toContain(`earlier boot (${bootId})`);
    await eventually('the clearing Event', async () => (await events(node, 'ClearedByReboot'))[0], 10_000, third);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await condition(node, 'NodepulseTestDeadlock'))?.status).toBe('False');
  });
});
