import type { AzureProviderConfig } from '../config/controllerConfig.js';
import { runArmAction, type ArmDeps } from './armOperation.js';
import { armTokenSource, type TokenSource } from './armToken.js';
import { instanceActionUrl, parseScaleSetInstance, type InstanceAction } from './azureResourceId.js';
import { failure, type ProviderResult, type ProviderTarget, type RemediationProvider } from './provider.js';

/**
 * The Azure Compute operations on the node's own VM scale set instance, as AKS's auto-repair
 * does them: restart, reimage, redeploy. The instance comes from spec.providerID and nothing
 * else; a node that is not a scale set instance is refused with a clear error.
 */
export class AzureProvider implements RemediationProvider {
  readonly name = 'azure';
  private readonly deps: ArmDeps;

  constructor(
    private readonly config: AzureProviderConfig,
    options: { tokens?: TokenSource; sleep?: ArmDeps['sleep'] } = {},
  ) {
    this.deps = { config, tokens: options.tokens ?? armTokenSource(config) };
    if (options.sleep) this.deps.sleep = options.sleep;
  }

  reboot(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    return this.act('restart', target, signal);
  }

  reimage(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    return this.act('reimage', target, signal);
  }

  redeploy(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    return this.act('redeploy', target, signal);
  }

  private async act(action: InstanceAction, target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    const parsed = parseScaleSetInstance(target.providerID);
    if (!parsed.ok) return failure('NotAScaleSetInstance', parsed.error);
    const { instance } = parsed;
    const url = instanceActionUrl(this.config.armEndpoint, instance, action, this.config.apiVersion);
    const outcome = await runArmAction(url, this.deps, signal);
    if (!outcome.ok) return failure(outcome.code, outcome.message);
    return {
      ok: true,
      detail: `${action} of scale set ${instance.scaleSet} instance ${instance.instanceId} succeeded${
        outcome.polls > 0 ? ` (long-running operation, ${outcome.polls} poll${outcome.polls === 1 ? '' : 's'})` : ''
      }`,
    };
  }
}
