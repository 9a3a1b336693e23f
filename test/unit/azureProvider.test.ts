import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controllerConfigSchema, type AzureProviderConfig } from '../../controller/config/controllerConfig.js';
import { AzureProvider } from '../../controller/providers/azureProvider.js';
import { instanceActionUrl, parseScaleSetInstance } from '../../controller/providers/azureResourceId.js';
import type { ProviderTarget } from '../../controller/providers/provider.js';
import { startArmStandIn, startTokenStandIn, type ArmStandIn, type TokenStandIn } from '../support/armStandIn.js';

const SUB = '0b1f6471-1bf0-4dda-aec3-111122223333';
const RG = 'MC_prod-rg_prod-aks_eastus';
const VMSS = 'aks-nodepool1-12345678-vmss';
const providerIdOf = (instance: string, scaleSet = VMSS) =>
  `azure:///subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/${scaleSet}/virtualMachines/${instance}`;
const node = (providerID?: string): ProviderTarget => ({ name: 'aks-nodepool1-12345678-vmss000003', uid: 'u', ...(providerID ? { providerID } : {}) });

const TOKEN = 'arm-token-for-tests';
const ASSERTION = 'projected-service-account-jwt';
let arm: ArmStandIn;
let login: TokenStandIn;
let tokenFile: string;

beforeAll(async () => {
  arm = await startArmStandIn({ token: TOKEN });
  login = await startTokenStandIn({ tenantId: 'tenant-1', clientId: 'client-1', assertion: ASSERTION, token: TOKEN });
  tokenFile = join(mkdtempSync(join(tmpdir(), 'nodepulse-wi-')), 'azure-identity-token');
  writeFileSync(tokenFile, `${ASSERTION}\n`);
});
afterAll(async () => {
  await arm.close();
  await login.close();
});
afterEach(() => {
  arm.calls.length = 0;
  login.entraRequests.length = 0;
  login.imdsRequests.length = 0;
});

function azureConfig(overrides: Partial<AzureProviderConfig> = {}): AzureProviderConfig {
  const config = controllerConfigSchema.parse({
    provider: {
      type: 'azure',
      azure: { armEndpoint: arm.url, authorityHost: login.url, imdsEndpoint: login.url, tenantId: 'tenant-1', clientId: 'client-1', federatedTokenFile: tokenFile },
    },
  }).provider.azure;
  return { ...config, ...overrides };
}

/** Records every wait instead of sleeping, so tests check the waits without taking them. */
function recordingSleep() {
  const waits: number[] = [];
  const sleep = async (ms: number, signal: AbortSignal) => {
    signal.throwIfAborted();
    waits.push(ms);
  };
  return { waits, sleep };
}

function provider(overrides: Partial<AzureProviderConfig> = {}) {
  const { waits, sleep } = recordingSleep();
  return { azure: new AzureProvider(azureConfig(overrides), { sleep }), waits };
}

const signal = () => AbortSignal.timeout(20_000);

describe('Azure provider against the ARM stand-in', () => {
  it('restarts the node\'s own scale set instance and polls the long-running operation to completion', async () => {
    arm.script({ kind: 'accepted', polls: 3, retryAfter: 4 });
    const { azure, waits } = provider();
    const result = await azure.reboot(node(providerIdOf('3')), signal());
    expect(result).toEqual({ ok: true, detail: `restart of scale set ${VMSS} instance 3 succeeded (long-running operation, 4 polls)` });
    expect(arm.actionCalls()).toEqual([
      expect.objectContaining({ path: `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/${VMSS}/virtualMachines/3/restart`, apiVersion: '2024-07-01', authorization: `Bearer ${TOKEN}` }),
    ]);
    expect(arm.calls.filter((c) => c.method === 'GET')).toHaveLength(4);
    // The server's Retry-After (4 s) paces the polling.
    expect(waits).toEqual([4000, 4000, 4000, 4000]);
    expect(arm.scaleSetLevelCalls()).toEqual([]);
  });

  it('reimages and redeploys with the matching per-instance actions', async () => {
    const { azure } = provider();
    expect((await azure.reimage(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect((await azure.redeploy(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(arm.actionCalls().map((c) => c.action)).toEqual(['reimage', 'redeploy']);
  });

  it('follows the Location header when ARM offers no Azure-AsyncOperation', async () => {
    arm.script({ kind: 'accepted', polls: 2, via: 'location' });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ ok: true });
    expect(arm.calls.filter((c) => c.method === 'GET')).toHaveLength(3);
  });

  it('a 200 answer is done at once, with nothing to poll', async () => {
    arm.script({ kind: 'ok' });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toEqual({ ok: true, detail: `restart of scale set ${VMSS} instance 3 succeeded` });
    expect(arm.calls).toHaveLength(1);
  });

  it('waits out throttling (429) for as long as Retry-After says, then succeeds', async () => {
    arm.script({ kind: 'throttle', retryAfter: 7 }, { kind: 'throttle', retryAfter: 2 }, { kind: 'ok' });
    const { azure, waits } = provider();
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(arm.actionCalls('restart')).toHaveLength(3);
    expect(waits).toEqual([7000, 2000]);
  });

  it('caps a Retry-After that would stall the ladder', async () => {
    arm.script({ kind: 'throttle', retryAfter: 3600 }, { kind: 'ok' });
    const { azure, waits } = provider({ maxRetryAfterSeconds: 30 });
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(waits).toEqual([30_000]);
  });

  it('retries server errors a bounded number of times, then fails with ARM\'s code', async () => {
    arm.script(...Array.from({ length: 4 }, () => ({ kind: 'server-error' as const, status: 503 })));
    const { azure } = provider({ maxRetries: 3 });
    const result = await azure.reboot(node(providerIdOf('3')), signal());
    expect(result).toEqual({ ok: false, code: 'InternalServerError', message: 'An internal execution error occurred. Please retry later.' });
    expect(arm.actionCalls()).toHaveLength(4);
  });

  it('a server error that clears within the retries is no failure', async () => {
    arm.script({ kind: 'server-error', status: 500 }, { kind: 'server-error', status: 502 }, { kind: 'ok' });
    const { azure, waits } = provider();
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(waits).toEqual([0, 0]);
  });

  it('passes 403 AuthorizationFailed (node resource group lockdown) through verbatim, without retrying', async () => {
    arm.script({ kind: 'forbidden' });
    const { azure } = provider();
    const result = await azure.reboot(node(providerIdOf('3')), signal());
    expect(result).toMatchObject({ ok: false, code: 'AuthorizationFailed', message: expect.stringContaining('deny assignment') });
    expect(arm.actionCalls()).toHaveLength(1);
  });

  it('reports a long-running operation that failed with the operation\'s own error code', async () => {
    arm.script({ kind: 'accepted', polls: 1, result: 'Failed', error: { code: 'VMRedeploymentFailed', message: 'Redeployment failed.' } });
    const { azure } = provider();
    expect(await azure.redeploy(node(providerIdOf('3')), signal())).toEqual({ ok: false, code: 'VMRedeploymentFailed', message: 'Redeployment failed.' });
  });

  it('never follows an operation URL to another host with its token', async () => {
    arm.script({ kind: 'accepted', operationUrl: 'http://127.0.0.2:9/operations/stolen' });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ ok: false, code: 'UnexpectedOperationUrl' });
  });

  it('stops polling when the step runs out of time', async () => {
    arm.script({ kind: 'accepted', polls: 1_000_000 });
    const controller = new AbortController();
    const azure = new AzureProvider(azureConfig(), {
      sleep: async (_ms, s) => {
        s.throwIfAborted();
        if (arm.calls.length > 5) controller.abort(new Error('step timeout'));
      },
    });
    const result = await azure.reboot(node(providerIdOf('3')), controller.signal);
    expect(result).toMatchObject({ ok: false, code: 'OperationAborted' });
  });

  it('really sleeps for Retry-After between attempts', async () => {
    arm.script({ kind: 'throttle', retryAfter: 1 }, { kind: 'ok' });
    const azure = new AzureProvider(azureConfig());
    const started = performance.now();
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  });
});

describe('ARM tokens', () => {
  it('exchanges the federated service-account token at Entra ID (workload identity) and reuses the ARM token', async () => {
    const { azure } = provider();
    arm.script({ kind: 'ok' }, { kind: 'ok' });
    await azure.reboot(node(providerIdOf('3')), signal());
    await azure.reboot(node(providerIdOf('4')), signal());
    expect(login.entraRequests).toHaveLength(1);
    expect(Object.fromEntries(login.entraRequests[0] ?? [])).toMatchObject({
      grant_type: 'client_credentials',
      client_id: 'client-1',
      client_assertion: ASSERTION,
      scope: 'https://management.azure.com/.default',
    });
  });

  it('gets the token from IMDS with a managed identity', async () => {
    const { azure } = provider({ credential: 'managed-identity', managedIdentityClientId: 'kubelet-identity' });
    arm.script({ kind: 'ok' });
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(login.imdsRequests.map((u) => Object.fromEntries(u.searchParams))).toEqual([
      { 'api-version': '2018-02-01', resource: 'https://management.azure.com', client_id: 'kubelet-identity' },
    ]);
  });

  it('a refused token request fails the step with Entra ID\'s code and sends nothing to ARM', async () => {
    const badFile = join(mkdtempSync(join(tmpdir(), 'nodepulse-wi-')), 'token');
    writeFileSync(badFile, 'someone-elses-jwt');
    const { azure } = provider({ federatedTokenFile: badFile });
    const result = await azure.reboot(node(providerIdOf('3')), signal());
    expect(result).toEqual({ ok: false, code: 'invalid_client', message: expect.stringContaining('AADSTS700211') });
    expect(arm.calls).toEqual([]);
  });
});

describe('the provider can never build a scale-set-level URL', () => {
  it.each([
    ['no providerID', undefined],
    ['a scale set without an instance', `azure:///subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/${VMSS}`],
    ['an empty instance id', providerIdOf('')],
    ['an instance id of ..', providerIdOf('..')],
    ['an encoded ..', providerIdOf('%2e%2e')],
    ['a path hidden in the instance id', `${providerIdOf('3')}/../..`],
    ['a named instance', providerIdOf('vmss000003')],
    ['a standalone VM', `azure:///subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines/aks-vm-0`],
    ['another cloud', 'kind://docker/kind/kind-worker'],
    ['a bad subscription', providerIdOf('3').replace(SUB, '..')],
  ])('refuses %s and sends nothing', async (_name, providerID) => {
    const { azure } = provider();
    const result = await azure.reboot(node(providerID), signal());
    expect(result).toMatchObject({ ok: false, code: 'NotAScaleSetInstance' });
    expect(arm.calls).toEqual([]);
  });

  it('refuses to build a URL from an instance that did not come from the parser', () => {
    for (const instanceId of ['', '..', '3/..', ' 3', '3?x=1']) {
      expect(() => instanceActionUrl(arm.url, { subscriptionId: SUB, resourceGroup: RG, scaleSet: VMSS, instanceId }, 'restart', '2024-07-01')).toThrow(
        /instanceId/,
      );
    }
  });

  it('every URL it builds ends at one instance of one scale set', () => {
    const parsed = parseScaleSetInstance(providerIdOf('42'));
    if (!parsed.ok) throw new Error(parsed.error);
    for (const action of ['restart', 'reimage', 'redeploy'] as const) {
      const url = instanceActionUrl('https://management.azure.com/', parsed.instance, action, '2024-07-01');
      expect(url.toString()).toBe(
        `https://management.azure.com/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/${VMSS}/virtualMachines/42/${action}?api-version=2024-07-01`,
      );
    }
  });
});
