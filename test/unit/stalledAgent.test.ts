import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { runPlugin } from '../../agent/monitors/customPluginMonitor.js';
import { queryDns } from '../../agent/probes/dnsClient.js';
import { KubeletProbe } from '../../agent/probes/kubeletProbe.js';

/**
 * An agent whose event loop stalls (a CPU-starved node, a long GC pause) past a check's deadline
 * while the answer is already waiting in the kernel must read the answer, not report a timeout:
 * Node runs expired timers before it polls for I/O. Each test starts a real exchange, then blocks
 * this thread past the deadline and until the other side (the kernel, a DNS server in another
 * process, a plugin process) has answered, however slow a loaded machine makes that side.
 */
const deadlineMs = 50;
const stallMs = 300;
const dir = mkdtempSync(join(tmpdir(), 'nodepulse-stall-'));

/** Blocks the event loop, as a starved or busy agent does: for `ms`, and on until `answered()`. */
function stall(ms: number, answered: () => boolean = () => true): void {
  const start = performance.now();
  while (performance.now() - start < ms || !answered()) {
    if (performance.now() - start > 20_000) throw new Error('the other side never answered');
  }
}

/** Lets the exchange go out (connect, send, spawn) before the loop stalls. */
const oneTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A loopback port nothing listens on: connecting is refused by the kernel at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A process that has exited and not been reaped: the agent's loop, which reaps, is blocked. */
const exited = (pid: number) => / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ')'));

// A DNS server in a process of its own, so that it answers while this thread is blocked. Once a
// reply is sent (on loopback it is in the client's socket when send returns) it touches a file.
const repliedFile = join(dir, 'dns-replied');
const dnsServerSource = `
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { decode, encode } from 'dns-packet';
const socket = createSocket('udp4');
socket.on('message', (msg, from) => {
  const query = decode(msg);
  const answers = query.questions.map((q) => ({ name: q.name, type: 'A', class: 'IN', ttl: 60, data: '10.1.2.3' }));
  socket.send(encode({ type: 'response', id: query.id, flags: 0x8180, questions: query.questions, answers }), from.port, from.address, () => writeFileSync(${JSON.stringify(repliedFile)}, ''));
});
socket.bind(0, '127.0.0.1', () => console.log(socket.address().port));
`;

describe('a stalled agent does not report a timeout for an answer that arrived in time', () => {
  let dnsServer: ChildProcess;
  let dnsPort: number;

  beforeAll(async () => {
    dnsServer = spawn(process.execPath, ['--input-type=module', '-e', dnsServerSource], { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(dnsServer.stdout!, 'data')) as [Buffer];
    dnsPort = Number(line.toString().trim());
  });
  afterAll(() => {
    dnsServer.kill();
  });

  it('kubelet: a refused connection reads as KubeletUnreachable, not KubeletTimeout', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/healthz`;
    const config = agentConfigSchema.parse({ probes: { kubelet: { url, timeoutMs: deadlineMs } } }).probes.kubelet;
    const sample = new KubeletProbe(config).run(new AbortController().signal);
    await oneTurn();
    stall(stallMs);
    const result = await sample;
    expect(result.reason).toBe('KubeletUnreachable');
    expect(result.message).toContain('ECONNREFUSED');
  });

  it('DNS: a reply that came in during the stall is read, and the check passes', async () => {
    const query = queryDns({ host: '127.0.0.1', port: dnsPort, family: 4 }, { name: 'node.example', type: 'A' }, { timeoutMs: deadlineMs });
    await oneTurn();
    stall(stallMs, () => existsSync(repliedFile));
    const reply = await query;
    expect(reply.outcome).toBe('ok');
    expect(reply.answers).toEqual(['10.1.2.3']);
  });

  it('custom plugin: a plugin that exited 0 during the stall is OK, not killed for its timeout', async () => {
    const path = join(dir, 'check.sh');
    const pidFile = join(dir, 'check.pid');
    writeFileSync(path, `#!/bin/sh\necho $$ > ${pidFile}\necho fine\nexit 0\n`);
    chmodSync(path, 0o755);
    const rule = { type: 'permanent' as const, condition: 'TestProblem', reason: 'TestIsBroken', path, command: path, args: [], timeoutMs: deadlineMs, intervalMs: 3_600_000 };
    const run = runPlugin(rule, { cwd: dir, env: process.env, maxOutputLength: 80 });
    stall(stallMs, () => existsSync(pidFile) && exited(Number(readFileSync(pidFile, 'utf8'))));
    const outcome = await run;
    expect(outcome).toMatchObject({ status: 'ok', exitCode: 0, timedOut: false, message: 'fine' });
  });
});
