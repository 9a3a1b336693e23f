import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import type { AzureProviderConfig } from '../config/controllerConfig.js';
import { ArmAuthError, describeFetchError, type TokenSource } from './armToken.js';
import { failure, type FailureClass, type ProviderFailure } from './provider.js';
import { deadlineSignal } from '../../common/deadline.js';

/**
 * Requests to Azure Resource Manager, every outcome classified for the ladder (provider.ts):
 *
 * - An action POST is sent once per call. ARM refusing it (409 conflict or operation in
 *   progress, 429 throttling, 408, a 401 even with a fresh token) is `transient`; a 4xx no retry
 *   can change (400, 403, 404) is `permanent`; a 5xx, a timeout or a broken connection once the
 *   request may have left is `unknown`: ARM may be running the action, so only inspect() may
 *   decide to send it again. Only a connection that never opened (refused, DNS) proves that
 *   nothing was sent, and is `transient`.
 * - 202 is a long-running operation, polled at its Azure-AsyncOperation (else Location) URL:
 *   Succeeded, or Failed/Canceled (`failed`, with ARM's code). Still running when the step's
 *   signal ends, or an operation URL we will not follow, is `unknown`.
 * - Reads (operation polls, the instance view) change nothing, so 429, 5xx and network errors
 *   are retried up to `maxRetries` times.
 * - A 401 drops the cached token and sends the request once more with a fresh one: ARM does
 *   nothing with a request it could not authenticate.
 *
 * Retry-After is honoured, capped at maxRetryAfterSeconds. ARM's error codes are kept verbatim.
 */
export interface ArmDeps {
  config: AzureProviderConfig;
  tokens: TokenSource;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Reads Retry-After given as an HTTP date. */
  now?: () => number;
}

/** Where a long-running operation reports its progress. */
export interface ArmOperation {
  url: URL;
  via: 'azure-async' | 'location';
}

export type ArmActionOutcome = { ok: true; polls: number } | ProviderFailure;

/** What one read of an operation's URL said. */
export type OperationState =
  | { state: 'running'; retryAfterMs?: number }
  | { state: 'succeeded' }
  /** The operation ended Failed or Canceled. */
  | { state: 'failed'; failure: ProviderFailure }
  /** No answer that says how it went (404, 5xx, network): the operation's fate is unknown. */
  | { state: 'unreadable'; failure: ProviderFailure };

export interface ArmReply {
  status: number;
  headers: Headers;
  body: unknown;
}

const cloudError = z.object({ error: z.object({ code: z.string().min(1), message: z.string().optional() }) });
const operationStatus = z.object({
  status: z.string().min(1),
  error: z.object({ code: z.string().min(1), message: z.string().optional() }).optional(),
});

/** POSTs `url` once, then follows the operation it starts; `onAccepted` learns where to poll it. */
export async function runArmAction(url: URL, deps: ArmDeps, signal: AbortSignal, onAccepted: (operation: ArmOperation) => void): Promise<ArmActionOutcome> {
  let posted: Attempt;
  try {
    posted = await send('POST', url, deps, signal);
  } catch (err) {
    if (err instanceof ArmAuthError) return tokenFailure(err, 'transient');
    throw err;
  }
  if ('lost' in posted) return posted.lost;
  const { reply } = posted;
  if (reply.status === 200 || reply.status === 204) return { ok: true, polls: 0 };
  if (reply.status !== 202 && reply.status !== 201) {
    const { code, message } = errorOf(reply);
    return failure(code, message, classOfRefusal(reply.status), retryAfterMs(reply.headers, deps));
  }
  const operation = operationOf(reply, deps.config);
  // Accepted with nothing to follow: ARM considers the action handed over.
  if (operation === undefined) return { ok: true, polls: 0 };
  if ('ok' in operation) return operation;
  onAccepted(operation);
  return follow(operation, retryAfterMs(reply.headers, deps), deps, signal);
}

/** One read of an operation's URL. */
export async function pollOperation(operation: ArmOperation, deps: ArmDeps, signal: AbortSignal): Promise<OperationState> {
  const read = await readArm(operation.url, deps, signal);
  if (!read.ok) return { state: 'unreadable', failure: { ...read, class: 'unknown' } };
  const { reply } = read;
  const wait = retryAfterMs(reply.headers, deps);
  const running = (): OperationState => (wait === undefined ? { state: 'running' } : { state: 'running', retryAfterMs: wait });
  const unreadable = (): OperationState => {
    const { code, message } = errorOf(reply);
    return { state: 'unreadable', failure: failure(code, message, 'unknown', wait) };
  };
  if (operation.via === 'azure-async') {
    if (reply.status !== 200) return unreadable();
    const parsed = operationStatus.safeParse(reply.body);
    if (!parsed.success) {
      return { state: 'unreadable', failure: failure('InvalidOperationStatus', `operation status without a status field (HTTP ${reply.status})`, 'unknown') };
    }
    const { status, error } = parsed.data;
    if (status === 'Succeeded') return { state: 'succeeded' };
    if (status === 'Failed' || status === 'Canceled') {
      return { state: 'failed', failure: failure(error?.code ?? `Operation${status}`, error?.message ?? `the operation ended ${status}`, 'failed') };
    }
    return running();
  }
  if (reply.status === 200 || reply.status === 204) return { state: 'succeeded' };
  if (reply.status === 202) return running();
  // A Location URL answers a finished, failed operation with its error; 404, 401 and 5xx say nothing of it.
  if (reply.status === 404 || reply.status === 401 || reply.status === 429 || reply.status >= 500) return unreadable();
  const { code, message } = errorOf(reply);
  return { state: 'failed', failure: failure(code, message, 'failed') };
}

/**
 * A GET, retried on 429, 5xx and network errors. A failure here means ARM could not be asked
 * right now (`transient`): reading never changes anything.
 */
export async function readArm(url: URL, deps: ArmDeps, signal: AbortSignal): Promise<{ ok: true; reply: ArmReply } | ProviderFailure> {
  const sleep = sleepOf(deps);
  try {
    for (let attempt = 0; ; attempt += 1) {
      const result = await send('GET', url, deps, signal);
      const retryable = 'lost' in result ? !signal.aborted : result.reply.status === 429 || result.reply.status >= 500;
      if (!retryable || attempt >= deps.config.maxRetries) {
        return 'lost' in result ? { ...result.lost, class: 'transient' } : { ok: true, reply: result.reply };
      }
      const backoff = Math.min(2 ** attempt, deps.config.maxRetryAfterSeconds) * 1000;
      await sleep(('reply' in result ? retryAfterMs(result.reply.headers, deps) : undefined) ?? backoff, signal);
    }
  } catch (err) {
    if (err instanceof ArmAuthError) return tokenFailure(err, 'transient');
    if (signal.aborted) return aborted(url, signal, 'transient');
    throw err;
  }
}

/** ARM's own code and message from a CloudError body, or the HTTP status when there is none. */
export function errorOf(reply: ArmReply): { code: string; message: string } {
  const parsed = cloudError.safeParse(reply.body);
  if (parsed.success) return { code: parsed.data.error.code, message: parsed.data.error.message ?? `HTTP ${reply.status}` };
  return { code: `HTTP${reply.status}`, message: `ARM answered ${reply.status} without an error body` };
}

/** What an ARM refusal of a request means: 5xx may have been acted on; 409/429/408/401 were not. */
export function classOfRefusal(status: number): FailureClass {
  if (status === 401 || status === 408 || status === 409 || status === 429) return 'transient';
  if (status >= 400 && status < 500) return 'permanent';
  return 'unknown';
}

async function follow(operation: ArmOperation, firstWait: number | undefined, deps: ArmDeps, signal: AbortSignal): Promise<ArmActionOutcome> {
  const sleep = sleepOf(deps);
  let wait = firstWait ?? deps.config.pollIntervalSeconds * 1000;
  for (let polls = 1; ; polls += 1) {
    try {
      await sleep(wait, signal);
    } catch (err) {
      if (signal.aborted) return stillRunning(signal);
      throw err;
    }
    const seen = await pollOperation(operation, deps, signal);
    if (signal.aborted) return stillRunning(signal);
    switch (seen.state) {
      case 'succeeded':
        return { ok: true, polls };
      case 'failed':
      case 'unreadable':
        return seen.failure;
      case 'running':
        wait = seen.retryAfterMs ?? deps.config.pollIntervalSeconds * 1000;
    }
  }
}

function stillRunning(signal: AbortSignal): ProviderFailure {
  return failure('OperationStillRunning', `the operation was still in progress when the step stopped waiting (${reasonOf(signal)})`, 'unknown');
}

type Attempt = { reply: ArmReply } | { lost: ProviderFailure };

/** One request, and once more with a fresh token after a 401. Throws ArmAuthError when no token can be had. */
async function send(method: 'POST' | 'GET', url: URL, deps: ArmDeps, signal: AbortSignal): Promise<Attempt> {
  for (let refreshed = false; ; refreshed = true) {
    const token = await deps.tokens.getToken(signal);
    const attempt = await sendOnce(method, url, token, deps, signal);
    if (refreshed || !('reply' in attempt) || attempt.reply.status !== 401) return attempt;
    deps.tokens.invalidate(token);
  }
}

/** Errors that prove the connection never opened, so the request never left. */
const neverConnected = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

async function sendOnce(method: 'POST' | 'GET', url: URL, token: string, deps: ArmDeps, signal: AbortSignal): Promise<Attempt> {
  const { config } = deps;
  try {
    const response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
      ...(method === 'POST' ? { body: '' } : {}),
      redirect: 'error',
      signal: AbortSignal.any([signal, deadlineSignal(config.requestTimeoutSeconds * 1000)]),
    });
    return { reply: { status: response.status, headers: response.headers, body: await readJson(response) } };
  } catch (err) {
    const where = `${method} ${url.origin}${url.pathname}`;
    const mayHaveActed = method === 'POST' ? '; ARM may have acted on it' : '';
    const cause = (err as { cause?: { code?: unknown } }).cause?.code;
    if (typeof cause === 'string' && neverConnected.has(cause)) {
      return { lost: failure('ArmUnreachable', `${where}: ${describeFetchError(err)} (nothing was sent)`, 'transient') };
    }
    if (signal.aborted) return { lost: aborted(url, signal, 'unknown') };
    if ((err as Error).name === 'TimeoutError') {
      return { lost: failure('ArmRequestTimeout', `${where}: no answer within ${config.requestTimeoutSeconds}s${mayHaveActed}`, 'unknown') };
    }
    return { lost: failure('ArmConnectionLost', `${where}: ${describeFetchError(err)}${mayHaveActed}`, 'unknown') };
  }
}

function aborted(url: URL, signal: AbortSignal, failureClass: FailureClass): ProviderFailure {
  return failure('OperationAborted', `stopped waiting for ${url.origin}${url.pathname}: ${reasonOf(signal)}`, failureClass);
}

function tokenFailure(err: ArmAuthError, failureClass: FailureClass): ProviderFailure {
  return failure(err.code, `ARM token: ${err.message}`, failureClass);
}

function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : String(reason);
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

function sleepOf(deps: ArmDeps): (ms: number, signal: AbortSignal) => Promise<void> {
  return deps.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }));
}

/** Retry-After in seconds or as an HTTP date, capped so one answer cannot stall the ladder. */
function retryAfterMs(headers: Headers, deps: ArmDeps): number | undefined {
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const now = deps.now ?? Date.now;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - now()) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(Math.max(seconds, 0), deps.config.maxRetryAfterSeconds) * 1000;
}

/**
 * The operation URL of a 202, followed with our bearer token only to ARM itself. One we will not
 * follow is `unknown`, not a failure: ARM accepted the action, which may be running.
 */
function operationOf(reply: ArmReply, config: AzureProviderConfig): ArmOperation | ProviderFailure | undefined {
  const asyncOperation = reply.headers.get('azure-asyncoperation');
  const candidate = asyncOperation ?? reply.headers.get('location');
  if (candidate === null) return undefined;
  const via = asyncOperation !== null ? 'azure-async' : 'location';
  const arm = new URL(config.armEndpoint);
  let url: URL;
  try {
    url = new URL(candidate, arm);
  } catch {
    return failure('UnexpectedOperationUrl', `ARM accepted the action but sent an operation URL that does not parse: ${candidate}`, 'unknown');
  }
  if (url.origin !== arm.origin) {
    return failure(
      'UnexpectedOperationUrl',
      `ARM accepted the action but its operation URL ${url.origin} is not the ARM endpoint ${arm.origin}; not following it with our token`,
      'unknown',
    );
  }
  return { url, via };
}
