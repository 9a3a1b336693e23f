import { failure, type ProviderResult, type ProviderTarget, type RemediationProvider } from './provider.js';

/**
 * Asks the node's own agent to reboot its host, kured-style: the controller sets a request
 * annotation on the Node (its value is the time of the request), and the agent on that node,
 * which watches its own Node, runs its configured reboot command once per request newer than
 * its boot. Reimage and redeploy need the cloud: they are reported as not supported, so the
 * ladder records a *Error event and moves on.
 */
export type NodeAnnotator = (nodeName: string, annotations: Record<string, string>, signal: AbortSignal) => Promise<void>;

export class AgentProvider implements RemediationProvider {
  readonly name = 'agent';

  constructor(
    private readonly annotate: NodeAnnotator,
    private readonly requestAnnotation: string,
    private readonly now: () => number = Date.now,
  ) {}

  async reboot(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    const requestedAt = new Date(this.now()).toISOString();
    try {
      await this.annotate(target.name, { [this.requestAnnotation]: requestedAt }, signal);
    } catch (err) {
      const reason = (err as { reason?: unknown }).reason;
      return failure(typeof reason === 'string' && reason !== '' ? reason : 'RebootRequestFailed', `could not set ${this.requestAnnotation}: ${(err as Error).message}`);
    }
    return { ok: true, detail: `asked the node's agent to reboot (${this.requestAnnotation}=${requestedAt})` };
  }

  reimage(): Promise<ProviderResult> {
    return Promise.resolve(notSupported('reimage'));
  }

  redeploy(): Promise<ProviderResult> {
    return Promise.resolve(notSupported('redeploy'));
  }
}

function notSupported(step: string): ProviderResult {
  return failure('NotSupported', `the agent provider can only reboot a node; ${step} needs a cloud provider (provider.type: azure)`);
}
