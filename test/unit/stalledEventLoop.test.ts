import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { readArm } from '../../controller/providers/armOperation.js';
import { runPlugin } from '../../agent/monitors/customPluginMonitor.js';
import { queryDns } from '../../agent/probes/dnsClient.js';
import { KubeletProbe } from '../../agent/probes/kubeletProbe.js';

/**
 * A program whose event loop stalls (a CPU-starved node, a long GC pause) past a deadline while
 * the answer is already waiting in the kernel must read the answer, not report a timeout: Node
 * runs expired timers before it polls for I/O. Each test starts a real exchange, then blocks this
 * thread past the deadline and until the other side (the kernel, a server in another process, a
 * plugin process) has answered, however slow a loaded machine makes that side.
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

// A DNS server and an ARM stand-in in a process of their own, so that they answer while this
// thread is blocked. Once a reply is sent (on loopback it is in the client's socket when send
// returns) each touches a file.
const dnsRepliedFile = join(dir, 'dns-replied');
const armRepliedFile = join(dir, 'arm-replied');
const serversSource = `
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { decode, encode } from 'dns-packet';
const dns = createSocket('udp4');
dns.on('message', (msg, from) => {
  const query = decode(msg);
  const answers = query.questions.map((q) => ({ name: q.name, type: 'A', class: 'IN', ttl: 60, data: '10.1.2.3' }));
  dns.send(encode({ type: 'response', id: query.id, flags: 0x8180, questions: query.questions, answers }), from.port, from.address, () => writeFileSync(${JSON.stringify(dnsRepliedFile)}, ''));
});
const arm = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ properties: { provisioningState: 'Succeeded' } }), () => writeFileSync(${JSON.stringify(armRepliedFile)}, ''));
});
dns.bind(0, '127.0.0.1', () => arm.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ dns: dns.address().port, arm: arm.address().port }))));
`;

let servers: ChildProcess;
let ports: { dns: number; arm: number };
beforeAll(async () => {
  servers = spawn(process.execPath, ['--input-type=module', '-e', serversSource], { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(servers.stdout!, 'data')) as [Buffer];
  ports = JSON.parse(line.toString()) as typeof ports;
});
afterAll(() => {
  servers.kill();
});

describe('a stalled agent does not report a timeout for an answer that arrived in time', () => {
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
    const query = queryDns({ host: '127.0.0.1', port: ports.dns, family: 4 }, { name: 'node.example', type: 'A' }, { timeoutMs: deadlineMs });
    await oneTurn();
    stall(stallMs, () => existsSync(dnsRepliedFile));
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

describe('a stalled controller does not lose an ARM answer that arrived in time', () => {
  it('a read ARM answered during the stall is the answer, not a transient failure (no retry left to hide it)', async () => {
    const azure = controllerConfigSchema.parse({
      provider: {
        type: 'azure',
        azure: { armEndpoint: `http://127.0.0.1:${ports.arm}`, authorityHost: 'http://127.0.0.1:1', imdsEndpoint: 'http://127.0.0.1:1', tenantId: 't', clientId: 'c', federatedTokenFile: join(dir, 'token') },
      },
    }).provider.azure;
    const deps = { config: { ...azure, requestTimeoutSeconds: deadlineMs / 1000, maxRetries: 0 }, tokens: { getToken: async () => 'token', invalidate: () => {} } };
    const read = readArm(new URL(`http://127.0.0.1:${ports.arm}/subscriptions/s/operations/o`), deps, new AbortController().signal);
    await oneTurn();
    stall(stallMs, () => existsSync(armRepliedFile));
    const outcome = await read;
    expect(outcome).toMatchObject({ ok: true, reply: { status: 200, body: { properties: { provisioningState: 'Succeeded' } } } });
  });
});
