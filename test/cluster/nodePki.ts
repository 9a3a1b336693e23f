import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ControlPlaneSetupError } from './binaries.js';

const run = promisify(execFile);

/** A client certificate and its key, as files. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

/**
 * Client certificates between the API server and the real node's kubelet, under one test CA:
 * the kubelet authenticates as `system:node:<name>` (group system:nodes, so the Node authorizer
 * and NodeRestriction apply to it as on a real cluster), and the API server authenticates to the
 * kubelet (logs, exec, the node proxy) as a member of system:masters.
 */
export interface NodePki {
  /** The CA the API server (--client-ca-file) and the kubelet (x509 clientCAFile) trust. */
  caFile: string;
  kubelet: CertificateFiles;
  apiserverToKubelet: CertificateFiles;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error);
    throw new ControlPlaneSetupError(`openssl ${args[0]} failed: ${stderr.trim()} (the real node needs openssl: apt-get install openssl)`);
  }
}

async function clientCertificate(dir: string, name: string, subject: string, ca: CertificateFiles): Promise<CertificateFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', files.key, '-subj', subject, '-out', csr]);
  const extensions = join(dir, `${name}.ext`);
  writeFileSync(extensions, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', extensions, '-out', files.cert]);
  return files;
}

/** Makes the CA and both client certificates in `dir` (mode 0700: it holds keys). */
export async function createNodePki(dir: string, nodeName: string): Promise<NodePki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', ca.key, '-subj', '/CN=nodepulse-test-node-ca', '-days', '2', '-out', ca.cert]);
  // One after the other: both write the CA's serial file.
  const kubelet = await clientCertificate(dir, 'kubelet', `/O=system:nodes/CN=system:node:${nodeName}`, ca);
  const apiserverToKubelet = await clientCertificate(dir, 'apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', ca);
  return { caFile: ca.cert, kubelet, apiserverToKubelet };
}
