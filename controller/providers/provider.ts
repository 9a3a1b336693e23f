import type { Step } from '../remediationState.js';

/**
 * One remediation backend (Azure, the node's own agent, or nothing at all). A provider runs a
 * step on one node and says how it went; it never decides anything. Every failure, including
 * "not possible here", resolves to a result with an error code: the ladder records it in a
 * *Error event, verbatim, and goes on.
 */
export interface ProviderTarget {
  name: string;
  uid: string;
  /** spec.providerID, e.g. azure:///subscriptions/.../virtualMachines/3 */
  providerID?: string;
}

export type ProviderResult =
  | { ok: true; detail: string; dryRun?: boolean }
  | {
      ok: false;
      /** The backend's own error code, unchanged (e.g. ARM's `AuthorizationFailed`). */
      code: string;
      message: string;
    };

export interface RemediationProvider {
  readonly name: 'dry-run' | 'azure' | 'agent';
  /** The caller bounds every call with `signal` (the ladder's step timeout). */
  reboot(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult>;
  reimage(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult>;
  redeploy(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult>;
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

export function failure(code: string, message: string): ProviderResult {
  return { ok: false, code, message };
}
