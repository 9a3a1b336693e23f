import { setTimeout as delay } from 'node:timers/promises';
import { failure, runStep, type ProviderFailure, type ProviderResult, type ProviderTarget, type RemediationProvider, type StepStatus } from './providers/provider.js';
import type { Step } from './remediationState.js';

/**
 * Runs one ladder step to an outcome the ladder can act on, within the step's own time budget:
 *
 * | the provider says                            | the runner                                                  |
 * |----------------------------------------------|-------------------------------------------------------------|
 * | ok                                           | `ended`                                                     |
 * | `transient`                                  | sends the same request again after capped, jittered backoff |
 * |                                              | (at least the backend's Retry-After)                        |
 * | `unknown`                                    | never re-sends: inspect() with backoff until it says        |
 * |                                              | succeeded (`ended`), failed (`failed`), running (wait) or   |
 * |                                              | not-started (then, and only then, sends again)              |
 * | `failed`                                     | `failed`: the step ran, the ladder moves on                 |
 * | `permanent`                                  | `permanent`: needs a human                                  |
 * | budget spent while transient/unknown/running | `inconclusive`: retry the SAME step later, inspecting first; |
 * |                                              | never escalate                                              |
 * | `options.signal` (leadership) aborted        | `aborted`: nothing is concluded, the next leader inspects   |
 */
export type StepOutcome =
  | { kind: 'ended'; detail: string; dryRun?: boolean }
  | { kind: 'failed'; failure: ProviderFailure }
  | { kind: 'permanent'; failure: ProviderFailure }
  /** The last failure seen; `StepStillRunning` when the backend was still at it. */
  | { kind: 'inconclusive'; failure: ProviderFailure }
  | { kind: 'aborted' };

export interface StepRunOptions {
  /** Leadership: provider calls and waits stop when it aborts, and the outcome is `aborted`. */
  signal: AbortSignal;
  /** The step's own time budget, counted from this call. No wait or call goes past it. */
  budgetMs: number;
  /** When the step was first requested (epoch ms), for inspectFirst; each send made here is dated itself. */
  requestedAt?: number;
  /** The step may already have been sent (a predecessor's, or an inconclusive try): ask before sending. */
  inspectFirst?: boolean;
  backoff?: { initialMs: number; maxMs: number };
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** A signal that aborts after `ms`: the budget's bound on a provider call that hangs. */
  timeout?: (ms: number) => AbortSignal;
  /** Jitter, in [0, 1). */
  random?: () => number;
}

export const defaultStepBackoff = { initialMs: 1_000, maxMs: 60_000 } as const;

export async function runStepToOutcome(provider: RemediationProvider, step: Step, target: ProviderTarget, options: StepRunOptions): Promise<StepOutcome> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }));
  const random = options.random ?? Math.random;
  const { initialMs, maxMs } = options.backoff ?? defaultStepBackoff;
  const leadership = options.signal;
  const budgetMs = Math.max(0, options.budgetMs);
  const deadline = now() + budgetMs;
  const budget = (options.timeout ?? AbortSignal.timeout)(budgetMs);
  const signal = AbortSignal.any([leadership, budget]);

  let requestedAt = options.requestedAt ?? now();
  let mode: 'send' | 'inspect' = options.inspectFirst ? 'inspect' : 'send';
  let sends = 0;
  /** Inspections since the last send: the inspection backoff starts over after each send. */
  let looks = 0;
  let retryAfterMs: number | undefined;
  let last: ProviderFailure | undefined;

  const inconclusive = (): StepOutcome => ({
    kind: 'inconclusive',
    failure: last ?? failure('StepBudgetExhausted', `the ${step} step's time budget (${budgetMs} ms) ended before the provider answered`, 'unknown'),
  });
  /** Waits before the next call: `n` calls of this kind so far set the backoff. */
  const pause = async (n: number): Promise<'go' | 'inconclusive' | 'aborted'> => {
    const backoff = Math.min(maxMs, initialMs * 2 ** n);
    let wait = Math.max(retryAfterMs ?? 0, backoff / 2 + (random() * backoff) / 2);
    retryAfterMs = undefined;
    // A wait that would run past the budget is cut short for one last call before it ends, so
    // an operation that finishes late in the budget is still seen rather than called inconclusive.
    const remaining = deadline - now();
    const lastCall = Math.min(1000, options.budgetMs / 10);
    if (remaining <= lastCall) return 'inconclusive';
    wait = Math.min(wait, remaining - lastCall);
    try {
      await sleep(wait, leadership);
    } catch (err) {
      if (leadership.aborted) return 'aborted';
      throw err;
    }
    return 'go';
  };

  /** Which backoff step the wait before the next call takes; none before the very first call. */
  const backoffIndex = (): number | undefined => {
    // Sends back off over the whole run, so a backend that keeps losing them is not hammered.
    if (mode === 'send') return sends > 0 ? sends - 1 : undefined;
    // After a send, give the backend a moment before the first look; inspectFirst looks at once.
    if (sends > 0) return looks;
    return looks > 0 ? looks - 1 : undefined;
  };

  for (;;) {
    if (leadership.aborted) return { kind: 'aborted' };
    if (budget.aborted || now() >= deadline) return inconclusive();
    const index = backoffIndex();
    if (index !== undefined) {
      const paused = await pause(index);
      if (paused === 'aborted') return { kind: 'aborted' };
      if (paused === 'inconclusive') return inconclusive();
    }

    if (mode === 'send') {
      requestedAt = now();
      sends += 1;
      looks = 0;
      const result = await send(provider, step, target, signal);
      if (leadership.aborted) return { kind: 'aborted' };
      if (result.ok) return result.dryRun ? { kind: 'ended', detail: result.detail, dryRun: true } : { kind: 'ended', detail: result.detail };
      last = result;
      retryAfterMs = result.retryAfterMs;
      if (result.class === 'failed' || result.class === 'permanent') return { kind: result.class, failure: result };
      if (result.class === 'unknown') mode = 'inspect';
      continue;
    }

    looks += 1;
    const status = await inspect(provider, step, target, requestedAt, signal);
    if (leadership.aborted) return { kind: 'aborted' };
    switch (status.state) {
      case 'succeeded':
        return { kind: 'ended', detail: status.detail };
      case 'not-started':
        mode = 'send';
        break;
      case 'running':
        last = failure('StepStillRunning', status.detail, 'unknown');
        break;
      case 'failed': {
        const seen = status.failure;
        if (seen.class === 'failed' || seen.class === 'permanent') return { kind: seen.class, failure: seen };
        // The backend could not be asked just now: ask again, never send.
        last = seen;
        retryAfterMs = seen.retryAfterMs;
      }
    }
  }
}

/** A provider that throws has told us nothing: whatever it did may have reached the backend. */
async function send(provider: RemediationProvider, step: Step, target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
  try {
    return await runStep(provider, step, target, signal);
  } catch (err) {
    return failure('ProviderCrashed', (err as Error).message, 'unknown');
  }
}

async function inspect(provider: RemediationProvider, step: Step, target: ProviderTarget, requestedAt: number, signal: AbortSignal): Promise<StepStatus> {
  try {
    return await provider.inspect(step, target, requestedAt, signal);
  } catch (err) {
    return { state: 'failed', failure: failure('ProviderCrashed', (err as Error).message, 'transient') };
  }
}
