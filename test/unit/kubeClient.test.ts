import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiError, KubeClient } from '../../common/kube/kubeClient.js';
import { kubeconfigCredentials } from '../../common/kube/kubeconfigFile.js';

/**
 * The shared Kubernetes client (agent and controller) against a local HTTPS server: kept-alive
 * connections, client certificates from a kubeconfig, cancellation, and watch idle timeouts.
 */
const dir = mkdtempSync(join(tmpdir(), 'nodepulse-kubeclient-'));
const file = (name: string) => join(dir, name);
const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

function certificate(name: string, subject: string, extensions: string): void {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-subj', subject, '-out', file(`${name}.csr`)]);
  writeFileSync(file(`${name}.ext`), extensions);
  openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`)]);
}

let server: Server;
let url: string;
/** TLS connections the server accepted. */
let connections = 0;
let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('{}');

function kubeconfig(name: string, user: Record<string, string>): string {
  const b64 = (f: string) => readFileSync(file(f)).toString('base64');
  const path = file(`${name}.kubeconfig`);
  writeFileSync(
    path,
    JSON.stringify({
      'current-context': 'test',
      clusters: [{ name: 'test', cluster: { server: url, 'certificate-authority-data': b64('ca.crt') } }],
      users: [{ name: 'test', user }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
    }),
  );
  return path;
}

const withClientCert = () => kubeconfig('cert', { 'client-certificate-data': readFileSync(file('client.crt')).toString('base64'), 'client-key-data': readFileSync(file('client.key')).toString('base64') });

beforeAll(async () => {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('ca.key'), '-subj', '/CN=test-ca', '-days', '2', '-out', file('ca.crt')]);
  certificate('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  certificate('client', '/O=system:masters/CN=nodepulse-controller', 'extendedKeyUsage=clientAuth\n');
  server = createServer(
    { key: readFileSync(file('server.key')), cert: readFileSync(file('server.crt')), ca: readFileSync(file('ca.crt')), requestCert: true, rejectUnauthorized: false },
    (req, res) => handle(req, res),
  );
  server.on('secureConnection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe('the Kubernetes client', () => {
  it('sends every request over a few kept-alive TLS connections, not a new one per request', async () => {
    handle = (_req, res) => res.end('{"kind":"Node"}');
    const client = new KubeClient(kubeconfigCredentials(kubeconfig('token', { token: 't' })), { maxSockets: 2 });
    const before = connections;
    for (let i = 0; i < 20; i += 1) await client.request('GET', '/api/v1/nodes/a');
    expect(connections - before).toBe(1);
    // Many at once: no more connections than maxSockets.
    await Promise.all(Array.from({ length: 10 }, () => client.request('GET', '/api/v1/nodes/a')));
    expect(connections - before).toBeLessThanOrEqual(2);
    client.close();
  });

  it('authenticates with the kubeconfig\'s client certificate', async () => {
    handle = (req, res) => {
      const socket = req.socket as TLSSocket;
      if (!socket.authorized) {
        res.statusCode = 401;
        res.end(JSON.stringify({ kind: 'Status', reason: 'Unauthorized', message: 'no client certificate' }));
        return;
      }
      res.end(JSON.stringify({ user: socket.getPeerCertificate().subject.CN }));
    };
    const client = new KubeClient(kubeconfigCredentials(withClientCert()));
    expect(await client.request('GET', '/apis/authentication.k8s.io/v1/selfsubjectreviews')).toEqual({ user: 'nodepulse-controller' });
    client.close();
    const anonymous = new KubeClient(kubeconfigCredentials(kubeconfig('anonymous', {})));
    await expect(anonymous.request('GET', '/api/v1/nodes')).rejects.toMatchObject({ status: 401, reason: 'Unauthorized' });
    anonymous.close();
  });

  it('a request whose signal aborts rejects at once and its connection is closed, so its answer cannot land later', async () => {
    let closed = false;
    handle = (req) => req.socket.on('close', () => (closed = true));
    const client = new KubeClient(kubeconfigCredentials(withClientCert()));
    const stop = new AbortController();
    const call = client.request('PUT', '/apis/coordination.k8s.io/v1/namespaces/n/leases/l', { body: {}, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    await expect(call).rejects.toMatchObject({ status: 0, reason: 'Aborted' });
    await expect.poll(() => closed).toBe(true);
    client.close();
  });

  it('tells the refusals apart: the Status reason, and how long the server asked to wait', async () => {
    handle = (_req, res) => {
      res.writeHead(429, { 'Retry-After': '7', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'slow down' }));
    };
    const client = new KubeClient(kubeconfigCredentials(withClientCert()));
    const err = await client.request('PATCH', '/api/v1/nodes/a', { body: {}, patch: 'merge' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ status: 429, reason: 'TooManyRequests', retryAfterSeconds: 7 });
    client.close();
  });

  it('a watch says when the server answered, streams its events, and ends with Timeout when silent for longer than its idle timeout', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`);
      // Then nothing: a connection that went quiet.
    };
    const client = new KubeClient(kubeconfigCredentials(withClientCert()));
    const seen: string[] = [];
    const watch = client.watch<{ metadata: { name: string } }>('/api/v1/nodes?watch=true', (e) => seen.push(`${e.type} ${e.object.metadata.name}`), {
      idleTimeoutMs: 300,
      onOpen: () => seen.push('open'),
    });
    await expect(watch).rejects.toMatchObject({ status: 0, reason: 'Timeout' });
    expect(seen).toEqual(['open', 'ADDED a']);
    client.close();
  });
});
