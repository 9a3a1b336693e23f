import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import type { AzureProviderConfig } from '../config/controllerConfig.js';
import { ArmAuthError, describeFetchError, type TokenSource } from './armToken.js';

/**
 * One ARM action, run to completion the documented way: POST; 200 means done, 202 means a
 * long-running operation to poll at its Azure-AsyncOperation (or else Location) URL until it
 * says Succeeded, Failed or Canceled. 429 and 5xx are retried, waiting what the server's
 * Retry-After says (capped), at most `maxRetries` times per request. Errors keep ARM's own
 * code, unchanged, for the *Error event.
 */
export type ArmOutcome = { ok: true; polls: number } | { ok: false; code: string; message: string };

export interface ArmDeps {
  config: AzureProviderConfig;
  tokens: TokenSource;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const cloudError = z.object({ error: z.object({ code: z.string().min(1), message: z.string().optional() }) });
const operationStatus = z.object({
  status: z.string().min(1),
  error: z.object({ code: z.string().min(1), message: z.string().optional() }).optional(),
});

export async function runArmAction(url: URL, deps: ArmDeps, signal: AbortSignal): Promise<ArmOutcome> {
  try {
    return await runToCompletion(url, deps, signal);
  } catch (err) {
    if (err instanceof ArmAuthError) return { ok: false, code: err.code, message: `ARM token: ${err.message}` };
    if (signal.aborted) return { ok: false, code: 'OperationAborted', message: `stopped waiting for ARM: ${String(signal.reason)}` };
    if (err instanceof ArmRequestError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

class ArmRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function runToCompletion(url: URL, deps: ArmDeps, signal: AbortSignal): Promise<ArmOutcome> {
  const { config } = deps;
  const sleep = deps.sleep ?? ((ms, s) => delay(ms, undefined, { signal: s }));
  const started = await send('POST', url, deps, sleep, signal);
  if (started.status === 200 || started.status === 204) return { ok: true, polls: 0 };
  if (started.status !== 202 && started.status !== 201) return errorOf(started);
  const asyncOperation = started.headers.get('azure-asyncoperation');
  const location = started.headers.get('location');
  const pollUrl = asyncOperation ?? location;
  // Accepted with nothing to follow: ARM considers the action handed over.
  if (!pollUrl) return { ok: true, polls: 0 };
  const target = sameOrigin(pollUrl, config.armEndpoint);
  let wait = retryAfterMs(started.headers, config) ?? config.pollIntervalSeconds * 1000;
  for (let polls = 1; ; polls += 1) {
    await sleep(wait, signal);
    const poll = await send('GET', target, deps, sleep, signal);
    wait = retryAfterMs(poll.headers, config) ?? config.pollIntervalSeconds * 1000;
    if (asyncOperation) {
      if (poll.status !== 200) return errorOf(poll);
      const parsed = operationStatus.safeParse(poll.body);
      if (!parsed.success) return { ok: false, code: 'InvalidOperationStatus', message: `operation status without a status field (HTTP ${poll.status})` };
      const { status, error } = parsed.data;
      if (status === 'Succeeded') return { ok: true, polls };
      if (status === 'Failed' || status === 'Canceled') {
        return { ok: false, code: error?.code ?? `Operation${status}`, message: error?.message ?? `the operation ended ${status}` };
      }
    } else {
      if (poll.status === 200 || poll.status === 204) return { ok: true, polls };
      if (poll.status !== 202) return errorOf(poll);
    }
  }
}

interface ArmReply {
  status: number;
  headers: Headers;
  body: unknown;
}

async function send(
  method: 'POST' | 'GET',
  url: URL,
  deps: ArmDeps,
  sleep: (ms: number, signal: AbortSignal) => Promise<void>,
  signal: AbortSignal,
): Promise<ArmReply> {
  const { config } = deps;
  for (let attempt = 0; ; attempt += 1) {
    const token = await deps.tokens.getToken(signal);
    let reply: ArmReply | undefined;
    let networkError: string | undefined;
    try {
      const response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        ...(method === 'POST' ? { body: '' } : {}),
        redirect: 'error',
        signal: AbortSignal.any([signal, AbortSignal.timeout(config.requestTimeoutSeconds * 1000)]),
      });
      reply = { status: response.status, headers: response.headers, body: await readJson(response) };
    } catch (err) {
      if (signal.aborted) throw err;
      networkError = describeFetchError(err);
    }
    const retryable = reply === undefined || reply.status === 429 || reply.status >= 500;
    if (!retryable && reply) return reply;
    if (attempt >= config.maxRetries) {
      if (reply) return reply;
      throw new ArmRequestError('ArmUnreachable', `${method} ${url.origin}${url.pathname}: ${networkError} (after ${attempt + 1} tries)`);
    }
    const backoff = Math.min(2 ** attempt, config.maxRetryAfterSeconds) * 1000;
    await sleep((reply && retryAfterMs(reply.headers, config)) ?? backoff, signal);
  }
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorOf(reply: ArmReply): ArmOutcome {
  const parsed = cloudError.safeParse(reply.body);
  if (parsed.success) {
    return { ok: false, code: parsed.data.error.code, message: parsed.data.error.message ?? `HTTP ${reply.status}` };
  }
  return { ok: false, code: `HTTP${reply.status}`, message: `ARM answered ${reply.status} without an error body` };
}

/** Retry-After in seconds or as an HTTP date, capped so one answer cannot stall the ladder. */
function retryAfterMs(headers: Headers, config: AzureProviderConfig): number | undefined {
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(Math.max(seconds, 0), config.maxRetryAfterSeconds) * 1000;
}

/** Operation URLs are followed with our bearer token: only ever to ARM itself. */
function sameOrigin(candidate: string, armEndpoint: string): URL {
  let url: URL;
  try {
    url = new URL(candidate, armEndpoint);
  } catch {
    throw new ArmRequestError('UnexpectedOperationUrl', `ARM sent an operation URL that does not parse: ${candidate}`);
  }
  if (url.origin !== new URL(armEndpoint).origin) {
    throw new ArmRequestError('UnexpectedOperationUrl', `operation URL ${url.origin} is not the ARM endpoint ${new URL(armEndpoint).origin}; not following it with our token`);
  }
  return url;
}
