import { z } from 'zod';
import { classOfRefusal, errorOf, readArm, type ArmDeps } from './armOperation.js';
import { failure, type StepStatus } from './provider.js';

/**
 * What a VM scale set instance's instance view (GET .../virtualMachines/{id}/instanceView) says
 * of an action requested at `requestedAt`, when we hold no operation URL to ask. Its statuses
 * carry one `ProvisioningState/<state>[/<code>]` entry for the last control-plane operation
 * (a restart, reimage or redeploy is an update: `updating` while it runs) with the `time` it
 * reached that state, and one `PowerState/<state>`:
 *
 * | provisioning state               | time after the request | before it (or an older operation) |
 * |----------------------------------|------------------------|-----------------------------------|
 * | `updating`, `creating`, ...      | running                | running                           |
 * | `succeeded`                      | succeeded              | not-started                       |
 * | `failed/<code>`                  | failed, ARM's code     | not-started                       |
 *
 * The time is ARM's clock against ours; a provisioning state without a time cannot be ordered
 * and is reported as unreadable (the caller asks again), never as not-started.
 */
const instanceViewStatus = z.object({
  code: z.string().min(1),
  displayStatus: z.string().nullish(),
  message: z.string().nullish(),
  time: z.string().nullish(),
});
const instanceView = z.object({ statuses: z.array(instanceViewStatus).nullish() });

export async function inspectInstanceView(url: URL, deps: ArmDeps, requestedAt: number, signal: AbortSignal): Promise<StepStatus> {
  const read = await readArm(url, deps, signal);
  if (!read.ok) return { state: 'failed', failure: read };
  const { reply } = read;
  if (reply.status !== 200) {
    const { code, message } = errorOf(reply);
    // A read changes nothing: whatever may be retried is `transient`; 403/404/400 stay as they are.
    const failureClass = classOfRefusal(reply.status) === 'permanent' ? 'permanent' : 'transient';
    return { state: 'failed', failure: failure(code, `instance view: ${message}`, failureClass) };
  }
  const parsed = instanceView.safeParse(reply.body);
  if (!parsed.success) {
    return { state: 'failed', failure: failure('InvalidInstanceView', `instance view: ${parsed.error.issues[0]?.message ?? 'not an instance view'}`, 'transient') };
  }
  return statusOfInstanceView(parsed.data.statuses ?? [], requestedAt);
}

export function statusOfInstanceView(statuses: ReadonlyArray<z.infer<typeof instanceViewStatus>>, requestedAt: number): StepStatus {
  const provisioning = statuses.find((s) => /^ProvisioningState\//i.test(s.code));
  const power = statuses.find((s) => /^PowerState\//i.test(s.code))?.code.slice('PowerState/'.length) ?? 'unknown';
  if (!provisioning) {
    return { state: 'failed', failure: failure('InstanceViewWithoutProvisioningState', 'the instance view has no ProvisioningState status', 'transient') };
  }
  const [, state = '', code] = provisioning.code.split('/');
  const phase = state.toLowerCase();
  const requested = new Date(requestedAt).toISOString();
  if (phase !== 'succeeded' && phase !== 'failed') {
    return { state: 'running', detail: `the instance is ${phase} (power state ${power})` };
  }
  const at = provisioning.time ? Date.parse(provisioning.time) : Number.NaN;
  if (!Number.isFinite(at)) {
    return { state: 'failed', failure: failure('InstanceViewWithoutTime', `the instance view says ${provisioning.code} without a time; cannot tell whether it is the request of ${requested}`, 'transient') };
  }
  if (at <= requestedAt) {
    return { state: 'not-started', detail: `the last operation on the instance ended ${phase} at ${provisioning.time}, before the request of ${requested}` };
  }
  if (phase === 'succeeded') return { state: 'succeeded', detail: `the instance finished an operation at ${provisioning.time} (power state ${power})` };
  return {
    state: 'failed',
    failure: failure(code ?? 'ProvisioningFailed', provisioning.message ?? provisioning.displayStatus ?? `the operation ended ${provisioning.code}`, 'failed'),
  };
}
