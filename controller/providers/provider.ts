import type { Step } from '../remediationState.js';

/**
 * One remediation backend (Azure, the node's own agent, or nothing at all). A provider runs a
 * step on one node and says how it went; it never decides anything. Every failure resolves to
 * a result with the backend's own error code (verbatim in the *Error event) and a class that
 * tells the ladder what the failure means for the node:
 *
 * | class       | meaning                                                    | the ladder                          |
 * |-------------|------------------------------------------------------------|-------------------------------------|
 * | `transient` | nothing was done, and trying again may work: throttled     | the same step again, with capped    |
 * |             | (429), conflict / another operation in progress (409),     | backoff inside the step's budget;   |
 * |             | a refused token, a network error before the request left   | never the next step                 |
 * | `unknown`   | the request may have reached the backend: a timeout, a     | never re-sent: `inspect()` asks the |
 * |             | network error or a 5xx after it was sent, an operation     | backend what became of it first     |
 * |             | still running at the step timeout                          |                                     |
 * | `failed`    | the backend ran the step and reports that it failed        | the step counts as run              |
 * | `permanent` | can never succeed on this node: not a scale set instance,  | one Error event, then needs-human   |
 * |             | a malformed ID, NotSupported, forbidden                    |                                     |
 */
export interface ProviderTarget {
  name: string;
  uid: string;
  /** spec.providerID, e.g. azure:///subscriptions/.../virtualMachines/3 */
  providerID?: string;
  /** status.nodeInfo.bootID when the step was decided: the agent provider keys its reboot request on it. */
  bootID?: string;
}

export type FailureClass = 'transient' | 'unknown' | 'failed' | 'permanent';

export type ProviderFailure = {
  ok: false;
  /** The backend's own error code, unchanged (e.g. ARM's `AuthorizationFailed`). */
  code: string;
  message: string;
  class: FailureClass;
  /** How long the backend asked us to wait before trying again (Retry-After), when it said. */
  retryAfterMs?: number;
};

export type ProviderResult = { ok: true; detail: string; dryRun?: boolean } | ProviderFailure;

/** What became of a step whose request may have reached the backend (`inspect()`). */
export type StepStatus =
  /** It ran to completion. */
  | { state: 'succeeded'; detail: string }
  /** The backend is still working on it (or on another operation on this node): wait. */
  | { state: 'running'; detail: string }
  /** The backend never got it: it is safe to send the request again. */
  | { state: 'not-started'; detail: string }
  /** It ran and failed, or the backend cannot be asked (a ProviderFailure says which). */
  | { state: 'failed'; failure: ProviderFailure };

export interface RemediationProvider {
  readonly name: 'dry-run' | 'azure' | 'agent';
  /** The caller bounds every call with `signal` (the step's own time budget). */
  reboot(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult>;
  reimage(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult>;
  redeploy(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult>;
  /**
   * After an `unknown` outcome, or when a new leader finds a step started by its predecessor:
   * what became of `step` on this node, requested at `requestedAt` (epoch ms)? Reads only;
   * never sends the step again.
   */
  inspect(step: Step, target: ProviderTarget, requestedAt: number, signal: AbortSignal): Promise<StepStatus>;
}

export function runStep(provider: RemediationProvider, step: Step, target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
  switch (step) {
    case 'reboot':
      return provider.reboot(target, signal);
    case 'reimage':
      return provider.reimage(target, signal);
    case 'redeploy':
      return provider.redeploy(target, signal);
  }
}

export function failure(code: string, message: string, failureClass: FailureClass, retryAfterMs?: number): ProviderFailure {
  const result: ProviderFailure = { ok: false, code, message, class: failureClass };
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  return result;
}
