/**
 * The one place that turns a Node's spec.providerID into an ARM URL. Only per-instance
 * URLs can come out of it: the scale-set-level actions (.../virtualMachineScaleSets/{vmss}/restart)
 * act on *every* VM of the scale set when no instanceIds are given, so a missing, empty or
 * path-like instance id ("", "..", "3/..") is refused, never "fixed".
 */
export interface ScaleSetInstance {
  subscriptionId: string;
  resourceGroup: string;
  scaleSet: string;
  instanceId: string;
}

export type InstanceAction = 'restart' | 'reimage' | 'redeploy';

const providerIdPattern =
  /^azure:\/\/\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/([^/]+)$/i;

const segmentRules: Array<[keyof ScaleSetInstance, RegExp, string]> = [
  ['subscriptionId', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a GUID'],
  ['resourceGroup', /^[-\w.()]{0,89}[-\w()]$/, 'letters, digits, - _ . ( ), at most 90, not ending in .'],
  ['scaleSet', /^[A-Za-z0-9][-\w.]{0,63}$/, 'letters, digits, - _ ., at most 64'],
  ['instanceId', /^\d{1,10}$/, 'a number (VMSS uniform orchestration)'],
];

export function parseScaleSetInstance(providerID: string | undefined): { ok: true; instance: ScaleSetInstance } | { ok: false; error: string } {
  if (!providerID) return { ok: false, error: 'node has no spec.providerID' };
  const match = providerIdPattern.exec(providerID);
  if (!match) {
    return {
      ok: false,
      error: `spec.providerID "${providerID}" is not a VM scale set instance (azure:///subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachineScaleSets/<vmss>/virtualMachines/<id>); only those can be remediated`,
    };
  }
  const [, subscriptionId = '', resourceGroup = '', scaleSet = '', instanceId = ''] = match;
  const instance: ScaleSetInstance = { subscriptionId, resourceGroup, scaleSet, instanceId };
  const problem = invalidSegment(instance);
  return problem ? { ok: false, error: `spec.providerID "${providerID}": ${problem}` } : { ok: true, instance };
}

/** Builds POST .../virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}/{action}; throws on anything else. */
export function instanceActionUrl(armEndpoint: string, instance: ScaleSetInstance, action: InstanceAction, apiVersion: string): URL {
  return instanceUrl(armEndpoint, instance, action, apiVersion);
}

/** Builds GET .../virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}/instanceView. */
export function instanceViewUrl(armEndpoint: string, instance: ScaleSetInstance, apiVersion: string): URL {
  return instanceUrl(armEndpoint, instance, 'instanceView', apiVersion);
}

function instanceUrl(armEndpoint: string, instance: ScaleSetInstance, leaf: InstanceAction | 'instanceView', apiVersion: string): URL {
  const problem = invalidSegment(instance);
  if (problem) throw new Error(`refusing to build an ARM URL: ${problem}`);
  const path = [
    'subscriptions',
    instance.subscriptionId,
    'resourceGroups',
    instance.resourceGroup,
    'providers/Microsoft.Compute/virtualMachineScaleSets',
    instance.scaleSet,
    'virtualMachines',
    instance.instanceId,
    leaf,
  ]
    .map((part) => part.split('/').map(encodeURIComponent).join('/'))
    .join('/');
  const url = new URL(`${armEndpoint.replace(/\/+$/, '')}/${path}`);
  url.searchParams.set('api-version', apiVersion);
  // Belt and braces: whatever URL parsing did, the path must still end at this instance.
  if (!url.pathname.endsWith(`/virtualMachines/${instance.instanceId}/${leaf}`)) {
    throw new Error(`refusing to send ${url.pathname}: not one instance of one scale set`);
  }
  return url;
}

function invalidSegment(instance: ScaleSetInstance): string | undefined {
  for (const [field, rule, expected] of segmentRules) {
    const value = instance[field];
    if (typeof value !== 'string' || !rule.test(value)) return `${field} "${String(value)}" must be ${expected}`;
  }
  return undefined;
}
