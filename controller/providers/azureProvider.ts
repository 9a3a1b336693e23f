import type { AzureProviderConfig } from '../config/controllerConfig.js';
import type { Step } from '../remediationState.js';
import { inspectInstanceView } from './armInstanceView.js';
import { pollOperation, runArmAction, type ArmDeps, type ArmOperation } from './armOperation.js';
import { armTokenSource, type TokenSource } from './armToken.js';
import { instanceActionUrl, instanceViewUrl, parseScaleSetInstance, type InstanceAction, type ScaleSetInstance } from './azureResourceId.js';
import { failure, type ProviderResult, type ProviderTarget, type RemediationProvider, type StepStatus } from './provider.js';

/**
 * The Azure Compute operations on the node's own VM scale set instance, as AKS's auto-repair
 * does them: restart, reimage, redeploy. The instance comes from spec.providerID and nothing
 * else; a node that is not a scale set instance is refused, for good (`permanent`).
 *
 * inspect() never sends anything: it polls the operation this process was handed for the
 * action (if it was accepted after the request), and otherwise reads the instance view.
 */
const actionOf: Record<Step, InstanceAction> = { reboot: 'restart', reimage: 'reimage', redeploy: 'redeploy' };

export class AzureProvider implements RemediationProvider {
  readonly name = 'azure';
  private readonly deps: ArmDeps;
  private readonly now: () => number;
  /** The operation of the last accepted POST per instance action URL, until it is seen to end. */
  private readonly operations = new Map<string, { operation: ArmOperation; acceptedAt: number }>();

  constructor(
    private readonly config: AzureProviderConfig,
    options: { tokens?: TokenSource; sleep?: ArmDeps['sleep']; now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.deps = { config, tokens: options.tokens ?? armTokenSource(config), now: this.now };
    if (options.sleep) this.deps.sleep = options.sleep;
  }

  reboot(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    return this.act('reboot', target, signal);
  }

  reimage(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    return this.act('reimage', target, signal);
  }

  redeploy(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    return this.act('redeploy', target, signal);
  }

  async inspect(step: Step, target: ProviderTarget, requestedAt: number, signal: AbortSignal): Promise<StepStatus> {
    const parsed = parseScaleSetInstance(target.providerID);
    if (!parsed.ok) return { state: 'failed', failure: failure('NotAScaleSetInstance', parsed.error, 'permanent') };
    const { instance } = parsed;
    const key = this.actionUrl(instance, actionOf[step]).pathname;
    const known = this.operations.get(key);
    if (known && known.acceptedAt >= requestedAt) {
      const seen = await pollOperation(known.operation, this.deps, signal);
      if (seen.state === 'running') return { state: 'running', detail: `ARM reports the ${actionOf[step]} operation in progress` };
      if (seen.state === 'succeeded') {
        this.operations.delete(key);
        return { state: 'succeeded', detail: `the ${actionOf[step]} operation of ${describe(instance)} succeeded` };
      }
      if (seen.state === 'failed') {
        this.operations.delete(key);
        return seen;
      }
      // The operation URL says nothing (expired, 5xx): the instance itself still can.
    }
    return inspectInstanceView(instanceViewUrl(this.config.armEndpoint, instance, this.config.apiVersion), this.deps, requestedAt, signal);
  }

  private async act(step: Step, target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    const parsed = parseScaleSetInstance(target.providerID);
    if (!parsed.ok) return failure('NotAScaleSetInstance', parsed.error, 'permanent');
    const { instance } = parsed;
    const action = actionOf[step];
    const url = this.actionUrl(instance, action);
    const key = url.pathname;
    this.operations.delete(key);
    const outcome = await runArmAction(url, this.deps, signal, (operation) => this.operations.set(key, { operation, acceptedAt: this.now() }));
    if (!outcome.ok) {
      if (outcome.class !== 'unknown') this.operations.delete(key);
      return outcome;
    }
    this.operations.delete(key);
    return {
      ok: true,
      detail: `${action} of ${describe(instance)} succeeded${outcome.polls > 0 ? ` (long-running operation, ${outcome.polls} poll${outcome.polls === 1 ? '' : 's'})` : ''}`,
    };
  }

  private actionUrl(instance: ScaleSetInstance, action: InstanceAction): URL {
    return instanceActionUrl(this.config.armEndpoint, instance, action, this.config.apiVersion);
  }
}

function describe(instance: ScaleSetInstance): string {
  return `scale set ${instance.scaleSet} instance ${instance.instanceId}`;
}
