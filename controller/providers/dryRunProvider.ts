import type { ProviderResult, ProviderTarget, RemediationProvider, StepStatus } from './provider.js';

/** Everything but the action: the events and logs say what would have happened. The default. */
export class DryRunProvider implements RemediationProvider {
  readonly name = 'dry-run';

  reboot(target: ProviderTarget): Promise<ProviderResult> {
    return Promise.resolve(wouldHave('rebooted', target));
  }

  reimage(target: ProviderTarget): Promise<ProviderResult> {
    return Promise.resolve(wouldHave('reimaged', target));
  }

  redeploy(target: ProviderTarget): Promise<ProviderResult> {
    return Promise.resolve(wouldHave('redeployed', target));
  }

  /** A dry-run step is done the moment it is sent, so one found under way has ended. */
  inspect(): Promise<StepStatus> {
    return Promise.resolve({ state: 'succeeded', detail: 'dry run: nothing was done' });
  }
}

function wouldHave(verb: string, target: ProviderTarget): ProviderResult {
  const where = target.providerID ? ` (${target.providerID})` : '';
  return { ok: true, dryRun: true, detail: `dry run: would have ${verb} node ${target.name}${where}; nothing was done` };
}
