import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export interface KubeconfigIdentity {
  /** https://127.0.0.1:<port> */
  server: string;
  /** PEM bundle that verifies the apiserver's serving certificate. */
  caPem: string;
  /** Bearer token of the identity (static admin token or a ServiceAccount token). */
  token: string;
  /** Name of the identity, used for the user and context entries. */
  user: string;
}

/** Writes a single-context kubeconfig (mode 0600: it holds a token) that kubectl and client-node both read. */
export function writeKubeconfig(path: string, identity: KubeconfigIdentity): void {
  const cluster = 'nodepulse-test';
  const document = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: cluster,
        cluster: {
          server: identity.server,
          'certificate-authority-data': Buffer.from(identity.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: identity.user, user: { token: identity.token } }],
    contexts: [{ name: identity.user, context: { cluster, user: identity.user } }],
    'current-context': identity.user,
  };
  writeFileSync(path, stringify(document), { mode: 0o600 });
}
