import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { AgentKubeApi } from '../../agent/kube/agentKubeApi.js';
import { runPlugin } from '../../agent/monitors/customPluginMonitor.js';
import { queryDns } from '../../agent/probes/dnsClient.js';
import { KonnectivityEcho } from '../../agent/probes/konnectivityEcho.js';
import { KonnectivityProbe } from '../../agent/probes/konnectivityProbe.js';
import { KubeletProbe } from '../../agent/probes/kubeletProbe.js';
import { KubeClient } from '../../common/kube/kubeClient.js';
import { freeLoopbackPort } from '../support/agentProcess.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';
import { readArm } from '../../controller/providers/armOperation.js';

/**
 * A program whose event loop stalls (a CPU-starved node, a long GC pause) past a deadline while
 * the answer is already waiting in the kernel must read the answer, not report a timeout: Node
 * runs expired timers before it polls for I/O. Each test starts a real exchange, then blocks this
 * thread past the deadline while the other side (the kernel, a server in another process, a
 * plugin process) answers, and on until it has, however slow a loaded machine makes that side.
 */
const dir = mkdtempSync(join(tmpdir(), 'nodepulse-stall-'));

/** Blocks the event loop, as a starved or busy program does: for `ms`, and on until `answered()`. */
function stall(ms: number, answered: () => boolean = () => true): void {
  const start = performance.now();
  while (performance.now() - start < ms || !answered()) {
    if (performance.now() - start > 20_000) throw new Error('the other side never answered');
  }
}

/** Lets the exchange go out (connect, send, spawn) before the loop stalls. */
const oneTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A process that has exited and not been reaped: the program's loop, which reaps, is blocked. */
const exited = (pid: number) => / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ')'));

/**
 * A DNS server, an ARM stand-in and an API server stand-in in a process of their own, so that
 * they answer while this thread is blocked. Each holds a request until the test says `go` (a
 * file), which it does just before it blocks, so no answer can come before the stall; once the
 * reply is sent (on loopback it is in the client's socket when send returns) it touches a file.
 */
const file = (kind: string, step: 'received' | 'go' | 'replied') => `${dir}/${kind}-${step}`;
const serversSource = `
import { createSocket } from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { decode, encode } from 'dns-packet';
const file = (kind, step) => ${JSON.stringify(dir)} + '/' + kind + '-' + step;
function hold(kind, reply) {
  writeFileSync(file(kind, 'received'), '');
  const wait = setInterval(() => {
    if (!existsSync(file(kind, 'go'))) return;
    clearInterval(wait);
    reply(() => writeFileSync(file(kind, 'replied'), ''));
  }, 2);
}
const dns = createSocket('udp4');
dns.on('message', (msg, from) => {
  const query = decode(msg);
  const answers = query.questions.map((q) => ({ name: q.name, type: 'A', class: 'IN', ttl: 60, data: '10.1.2.3' }));
  hold('dns', (done) => dns.send(encode({ type: 'response', id: query.id, flags: 0x8180, questions: query.questions, answers }), from.port, from.address, done));
});
const http = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url.startsWith('/subscriptions/')) return hold('arm', (done) => res.end(JSON.stringify({ properties: { provisioningState: 'Succeeded' } }), done));
  if (req.url.includes('/deployments/')) {
    res.statusCode = 404;
    return res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 }));
  }
  const nonce = req.url.slice(req.url.lastIndexOf('/') + 1);
  hold('konnectivity', (done) => res.end(nonce, done));
});
dns.bind(0, '127.0.0.1', () => http.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ dns: dns.address().port, http: http.address().port }))));
`;

/**
 * Waits (the loop running) until the stand-in holds the request, then blocks while it answers
 * and past `deadlineMs`, which started before the request reached the stand-in.
 */
async function answeredDuringStall(kind: string, deadlineMs: number): Promise<void> {
  while (!existsSync(file(kind, 'received'))) await new Promise((resolve) => setTimeout(resolve, 2));
  // Block from the check phase, as a stall in an I/O callback does: the next turn then runs the
  // expired timers before it polls. (A stall inside the timers phase ends with a poll first.)
  await oneTurn();
  writeFileSync(file(kind, 'go'), '');
  stall(deadlineMs + 200, () => existsSync(file(kind, 'replied')));
}

/** Long enough that the wait for the stand-in to hold the request never uses it up, even on a loaded machine. */
const serverDeadlineMs = 2000;

let servers: ChildProcess;
let ports: { dns: number; http: number };
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
    // Free a moment ago and listened on by nobody: connecting is refused by the kernel at once.
    const url = `http://127.0.0.1:${await freeLoopbackPort()}/healthz`;
    const config = agentConfigSchema.parse({ probes: { kubelet: { url, timeoutMs: 50 } } }).probes.kubelet;
    const sample = new KubeletProbe(config).run(new AbortController().signal);
    await oneTurn();
    stall(300);
    const result = await sample;
    expect(result.reason).toBe('KubeletUnreachable');
    expect(result.message).toContain('ECONNREFUSED');
  });

  it('DNS: a reply that came in during the stall is read, and the check passes', async () => {
    const query = queryDns({ host: '127.0.0.1', port: ports.dns, family: 4 }, { name: 'node.example', type: 'A' }, { timeoutMs: serverDeadlineMs });
    await answeredDuringStall('dns', serverDeadlineMs);
    const reply = await query;
    expect(reply.outcome).toBe('ok');
    expect(reply.answers).toEqual(['10.1.2.3']);
  });

  it('konnectivity: the API server carrying the echo back during the stall is KonnectivityPathHealthy, not KonnectivityTimeout', async () => {
    const config = agentConfigSchema.parse({ nodeName: 'n1', probes: { konnectivity: { timeoutMs: serverDeadlineMs, podName: 'agent-x', podNamespace: 'nodepulse' } } }).probes.konnectivity;
    const api = new AgentKubeApi(new KubeClient({ server: `http://127.0.0.1:${ports.http}`, token: 'token', insecureSkipTLSVerify: false, source: 'this test' }));
    const probe = new KonnectivityProbe(config, api, new KonnectivityEcho(60_000), 20258);
    const sample = probe.run(new AbortController().signal);
    await answeredDuringStall('konnectivity', serverDeadlineMs);
    const result = await sample;
    expect(result).toMatchObject({ healthy: true, reason: 'KonnectivityPathHealthy', figures: { outcome: 'ok' } });
  });

  it('custom plugin: a plugin that exited 0 during the stall is OK, not killed for its timeout', async () => {
    const path = join(dir, 'check.sh');
    const pidFile = join(dir, 'check.pid');
    // Written whole or not at all: the test must never read a half-written pid.
    writeFileSync(path, `#!/bin/sh\necho $$ > ${pidFile}.new && mv ${pidFile}.new ${pidFile}\necho fine\nexit 0\n`);
    chmodSync(path, 0o755);
    const rule = { type: 'permanent' as const, condition: 'TestProblem', reason: 'TestIsBroken', path, command: path, args: [], timeoutMs: 50, intervalMs: 3_600_000 };
    const run = runPlugin(rule, { cwd: dir, env: process.env, maxOutputLength: 80 });
    stall(300, () => existsSync(pidFile) && exited(Number(readFileSync(pidFile, 'utf8'))));
    const outcome = await run;
    expect(outcome).toMatchObject({ status: 'ok', exitCode: 0, timedOut: false, message: 'fine' });
  });
});

describe('a stalled controller does not lose an ARM answer that arrived in time', () => {
  it('a read ARM answered during the stall is the answer, not a transient failure (no retry left to hide it)', async () => {
    const azure = controllerConfigSchema.parse({
      provider: {
        type: 'azure',
        azure: { armEndpoint: `http://127.0.0.1:${ports.http}`, authorityHost: 'http://127.0.0.1:1', imdsEndpoint: 'http://127.0.0.1:1', tenantId: 't', clientId: 'c', federatedTokenFile: join(dir, 'token') },
      },
    }).provider.azure;
    const deps = { config: { ...azure, requestTimeoutSeconds: serverDeadlineMs / 1000, maxRetries: 0 }, tokens: { getToken: async () => 'token', invalidate: () => {} } };
    const read = readArm(new URL(`http://127.0.0.1:${ports.http}/subscriptions/s/operations/o`), deps, new AbortController().signal);
    await answeredDuringStall('arm', serverDeadlineMs);
    const outcome = await read;
    expect(outcome).toMatchObject({ ok: true, reply: { status: 200, body: { properties: { provisioningState: 'Succeeded' } } } });
  });
});
