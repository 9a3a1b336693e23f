import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { KubeCredentialsError, readOrExplain, type KubeCredentials } from './kubeCredentials.js';

/*
 * Kubeconfig files are for running off-cluster (tests, a laptop). In a pod the agent uses its
 * ServiceAccount (kubeCredentials.ts) and never loads this module, nor yaml and zod with it.
 */
const kubeconfigSchema = z.object({
  'current-context': z.string().optional(),
  clusters: z
    .array(
      z.object({
        name: z.string(),
        cluster: z.object({
          server: z.string().url(),
          'certificate-authority': z.string().optional(),
          'certificate-authority-data': z.string().optional(),
          'insecure-skip-tls-verify': z.boolean().optional(),
          'tls-server-name': z.string().optional(),
        }),
      }),
    )
    .min(1),
  users: z
    .array(
      z.object({
        name: z.string(),
        user: z
          .object({
            token: z.string().optional(),
            tokenFile: z.string().optional(),
            'client-certificate': z.string().optional(),
            'client-certificate-data': z.string().optional(),
            'client-key': z.string().optional(),
            'client-key-data': z.string().optional(),
            exec: z.unknown().optional(),
            'auth-provider': z.unknown().optional(),
          })
          .nullish(),
      }),
    )
    .default([]),
  contexts: z.array(z.object({ name: z.string(), context: z.object({ cluster: z.string(), user: z.string().optional() }) })).min(1),
});

/** Credentials of the current context of a kubeconfig file (token, client cert or none). */
export function kubeconfigCredentials(path: string): KubeCredentials {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new KubeCredentialsError(`kubeconfig ${path}: ${(err as Error).message}`);
  }
  const parsed = kubeconfigSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KubeCredentialsError(`kubeconfig ${path}: ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`);
  }
  const config = parsed.data;
  const contextName = config['current-context'] ?? config.contexts[0]?.name;
  const context = config.contexts.find((c) => c.name === contextName);
  if (!context) throw new KubeCredentialsError(`kubeconfig ${path}: current-context "${contextName}" is not in contexts`);
  const cluster = config.clusters.find((c) => c.name === context.context.cluster)?.cluster;
  if (!cluster) throw new KubeCredentialsError(`kubeconfig ${path}: context "${contextName}" names cluster "${context.context.cluster}", which is not in clusters`);
  const user = config.users.find((u) => u.name === context.context.user)?.user ?? {};
  if (user.exec || user['auth-provider']) {
    throw new KubeCredentialsError(
      `kubeconfig ${path}: user "${context.context.user}" uses an exec or auth-provider plugin, which nodepulse does not run; use a token or client certificate`,
    );
  }
  const base = dirname(path);
  const file = (p: string | undefined, what: string) => (p ? readOrExplain(isAbsolute(p) ? p : join(base, p), what) : undefined);
  const data = (d: string | undefined) => (d ? Buffer.from(d, 'base64') : undefined);
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ca: data(cluster['certificate-authority-data']) ?? file(cluster['certificate-authority'], 'certificate-authority'),
    cert: data(user['client-certificate-data']) ?? file(user['client-certificate'], 'client-certificate'),
    key: data(user['client-key-data']) ?? file(user['client-key'], 'client-key'),
    token: user.token,
    tokenFile: user.tokenFile && (isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile)),
    insecureSkipTLSVerify: cluster['insecure-skip-tls-verify'] ?? false,
    tlsServerName: cluster['tls-server-name'],
    source: `kubeconfig ${path}`,
  };
}

