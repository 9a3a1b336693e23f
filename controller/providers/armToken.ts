import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { AzureProviderConfig } from '../config/controllerConfig.js';
import { deadlineSignal } from '../../common/deadline.js';

/**
 * ARM access tokens for the controller's identity: workload identity (the projected
 * service-account token in AZURE_FEDERATED_TOKEN_FILE exchanged at Entra ID as a client
 * assertion) or managed identity (IMDS). Both endpoints come from the config, so tests point
 * them at loopback. Tokens are cached until shortly before they expire, or until ARM refuses one.
 */
export class ArmAuthError extends Error {
  override name = 'ArmAuthError';
  constructor(
    /** Entra ID's or IMDS's own error code (e.g. `invalid_client`), or a short code of ours. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface TokenSource {
  getToken(signal: AbortSignal): Promise<string>;
  /** ARM refused `token` (401): forget it, so the next getToken() fetches a fresh one. */
  invalidate(token: string): void;
}

interface FetchedToken {
  token: string;
  expiresAt: number;
}

/** Refresh this long before expiry, so a token never expires in the middle of a step. */
const refreshMarginMs = 5 * 60_000;

export function armTokenSource(config: AzureProviderConfig, now: () => number = Date.now): TokenSource {
  const fetchToken = config.credential === 'workload-identity' ? workloadIdentity(config, now) : managedIdentity(config, now);
  let cached: FetchedToken | undefined;
  return {
    async getToken(signal) {
      if (!cached || cached.expiresAt - refreshMarginMs <= now()) cached = await fetchToken(signal);
      return cached.token;
    },
    invalidate(token) {
      // Only the refused token: another step may already have fetched its successor.
      if (cached?.token === token) cached = undefined;
    },
  };
}

const entraTokenReply = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().positive(),
});

function workloadIdentity(config: AzureProviderConfig, now: () => number): (signal: AbortSignal) => Promise<FetchedToken> {
  const { tenantId, clientId, federatedTokenFile } = config;
  if (!tenantId || !clientId || !federatedTokenFile) {
    throw new ArmAuthError('WorkloadIdentityNotConfigured', 'workload identity needs provider.azure.tenantId, clientId and federatedTokenFile');
  }
  const url = `${config.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
  return async (signal) => {
    // Re-read every time: the kubelet rotates the projected token.
    let assertion: string;
    try {
      assertion = (await readFile(federatedTokenFile, 'utf8')).trim();
    } catch (err) {
      throw new ArmAuthError('FederatedTokenUnreadable', `cannot read ${federatedTokenFile}: ${(err as Error).message}`);
    }
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: `${config.resource.replace(/\/+$/, '')}/.default`,
    });
    const reply = await tokenRequest(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, config, signal);
    const parsed = entraTokenReply.safeParse(reply);
    if (!parsed.success) throw new ArmAuthError('InvalidTokenResponse', `Entra ID token reply: ${parsed.error.issues[0]?.message}`);
    return { token: parsed.data.access_token, expiresAt: now() + parsed.data.expires_in * 1000 };
  };
}

const imdsTokenReply = z.object({
  access_token: z.string().min(1),
  expires_on: z.coerce.number().positive(),
});

function managedIdentity(config: AzureProviderConfig, now: () => number): (signal: AbortSignal) => Promise<FetchedToken> {
  const url = new URL('/metadata/identity/oauth2/token', config.imdsEndpoint);
  url.searchParams.set('api-version', '2018-02-01');
  url.searchParams.set('resource', config.resource);
  if (config.managedIdentityClientId) url.searchParams.set('client_id', config.managedIdentityClientId);
  return async (signal) => {
    const reply = await tokenRequest(url.toString(), { method: 'GET', headers: { metadata: 'true' } }, config, signal);
    const parsed = imdsTokenReply.safeParse(reply);
    if (!parsed.success) throw new ArmAuthError('InvalidTokenResponse', `IMDS token reply: ${parsed.error.issues[0]?.message}`);
    // expires_on is epoch seconds; never trust it beyond a day from now.
    return { token: parsed.data.access_token, expiresAt: Math.min(parsed.data.expires_on * 1000, now() + 86_400_000) };
  };
}

async function tokenRequest(url: string, init: RequestInit, config: AzureProviderConfig, signal: AbortSignal): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.any([signal, deadlineSignal(config.requestTimeoutSeconds * 1000)]) });
  } catch (err) {
    throw new ArmAuthError('TokenEndpointUnreachable', `${new URL(url).origin}: ${describeFetchError(err)}`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = z.object({ error: z.string(), error_description: z.string().optional() }).safeParse(body);
    if (error.success) throw new ArmAuthError(error.data.error, error.data.error_description?.split('\n')[0] ?? error.data.error);
    throw new ArmAuthError(`HTTP${response.status}`, `token endpoint answered ${response.status}`);
  }
  if (body === undefined) throw new ArmAuthError('InvalidTokenResponse', 'token endpoint answered with something that is not JSON');
  return body;
}

export function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
