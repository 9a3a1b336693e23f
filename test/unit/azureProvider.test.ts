import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controllerConfigSchema, type AzureProviderConfig } from '../../controller/config/controllerConfig.js';
import { statusOfInstanceView } from '../../controller/providers/armInstanceView.js';
import { AzureProvider } from '../../controller/providers/azureProvider.js';
import { instanceActionUrl, parseScaleSetInstance } from '../../controller/providers/azureResourceId.js';
import type { ProviderTarget } from '../../controller/providers/provider.js';
import { runStepToOutcome, type StepRunOptions } from '../../controller/stepRunner.js';
import { startArmStandIn, startTokenStandIn, type ArmStandIn, type TokenStandIn } from '../support/armStandIn.js';
import { fakeTime, type FakeTime } from '../support/fakeTime.js';

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
/** ARM's clock and ours: moves only when the provider or the step runner sleeps. */
let time: FakeTime = fakeTime(Date.now());

beforeAll(async () => {
  arm = await startArmStandIn({ token: TOKEN, now: () => time.now() });
  login = await startTokenStandIn({ tenantId: 'tenant-1', clientId: 'client-1', assertion: ASSERTION, token: TOKEN });
  tokenFile = join(mkdtempSync(join(tmpdir(), 'nodepulse-wi-')), 'azure-identity-token');
  writeFileSync(tokenFile, `${ASSERTION}\n`);
});
afterAll(async () => {
  await arm.close();
  await login.close();
});
afterEach(() => {
  arm.reset();
  login.entraRequests.length = 0;
  login.imdsRequests.length = 0;
  time = fakeTime(Date.now());
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

/** A provider on the fake clock: its waits are recorded in time.waits, never taken. */
function provider(overrides: Partial<AzureProviderConfig> = {}) {
  return { azure: new AzureProvider(azureConfig(overrides), { sleep: time.sleep, now: time.now }), waits: time.waits };
}

const signal = () => AbortSignal.timeout(20_000);
const restarts = (instance = '3') => arm.posts(instance, 'restart');

describe('Azure provider against the ARM stand-in', () => {
  it("restarts the node's own scale set instance and polls the long-running operation to completion", async () => {
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

  it('really sleeps for Retry-After between polls', async () => {
    arm.script({ kind: 'accepted', polls: 0, retryAfter: 1 });
    const azure = new AzureProvider(azureConfig());
    const started = performance.now();
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  });
});

describe('every ARM outcome has a class: what the ladder may do next', () => {
  it('409 OperationNotAllowed (another operation in progress) is transient, verbatim, and the client does not repeat the POST', async () => {
    arm.script({ kind: 'conflict', retryAfter: 12 });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toEqual({
      ok: false,
      code: 'OperationNotAllowed',
      message: expect.stringContaining('another operation is in progress'),
      class: 'transient',
      retryAfterMs: 12_000,
    });
    expect([restarts(), arm.started('3', 'restart')]).toEqual([1, 0]);
  });

  it('429 is transient with its Retry-After, capped so one answer cannot stall the ladder', async () => {
    arm.script({ kind: 'throttle', retryAfter: 7 }, { kind: 'throttle', retryAfter: 3600 });
    const { azure } = provider({ maxRetryAfterSeconds: 30 });
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ code: 'TooManyRequests', class: 'transient', retryAfterMs: 7_000 });
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ code: 'TooManyRequests', class: 'transient', retryAfterMs: 30_000 });
    expect(restarts()).toBe(2);
  });

  it('403 AuthorizationFailed (node resource group lockdown) is permanent, verbatim, without retrying', async () => {
    arm.script({ kind: 'forbidden' });
    const { azure } = provider();
    const result = await azure.reboot(node(providerIdOf('3')), signal());
    expect(result).toMatchObject({ ok: false, code: 'AuthorizationFailed', message: expect.stringContaining('deny assignment'), class: 'permanent' });
    expect(arm.actionCalls()).toHaveLength(1);
  });

  it.each([
    [400, 'InvalidParameter'],
    [404, 'ResourceNotFound'],
  ])('%i %s on the instance is permanent', async (status, code) => {
    arm.script({ kind: 'error', status, code, message: `ARM says ${code}` });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toEqual({ ok: false, code, message: `ARM says ${code}`, class: 'permanent' });
  });

  it('a 500 after ARM read the request is unknown and the POST is never re-sent', async () => {
    arm.script({ kind: 'accepted-then-error', status: 500 });
    const { azure } = provider({ maxRetries: 5 });
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ ok: false, code: 'InternalServerError', class: 'unknown' });
    expect([restarts(), arm.started('3', 'restart')]).toEqual([1, 1]);
  });

  it('a request that hangs after ARM accepted it times out as unknown, sent once', async () => {
    arm.script({ kind: 'accepted-then-hang' });
    const { azure } = provider({ requestTimeoutSeconds: 0.2 });
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ ok: false, code: 'ArmRequestTimeout', class: 'unknown' });
    expect([restarts(), arm.started('3', 'restart')]).toEqual([1, 1]);
  });

  it('a connection refused before anything was sent is transient', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    const { azure } = provider({ armEndpoint: `http://127.0.0.1:${port}` });
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ ok: false, code: 'ArmUnreachable', class: 'transient' });
  });

  it('a 401 drops the cached token and sends the request once more with a fresh one', async () => {
    arm.script({ kind: 'unauthorized' }, { kind: 'ok' });
    const { azure } = provider();
    expect((await azure.reboot(node(providerIdOf('3')), signal())).ok).toBe(true);
    expect(login.entraRequests).toHaveLength(2);
    expect([restarts(), arm.started('3', 'restart')]).toEqual([2, 1]);
  });

  it('a 401 even with a fresh token is transient, after exactly one retry', async () => {
    arm.script({ kind: 'unauthorized' }, { kind: 'unauthorized' });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ code: 'ExpiredAuthenticationToken', class: 'transient' });
    expect(restarts()).toBe(2);
  });

  it("a long-running operation that failed is failed, with the operation's own error code", async () => {
    arm.script({ kind: 'accepted', polls: 1, result: 'Failed', error: { code: 'VMRedeploymentFailed', message: 'Redeployment failed.' } });
    const { azure } = provider();
    expect(await azure.redeploy(node(providerIdOf('3')), signal())).toEqual({ ok: false, code: 'VMRedeploymentFailed', message: 'Redeployment failed.', class: 'failed' });
  });

  it('a 202 whose operation URL points at another host is unknown, not failed: the restart may be running', async () => {
    arm.script({ kind: 'accepted', operationUrl: 'http://127.0.0.2:9/operations/stolen' });
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), signal())).toMatchObject({ ok: false, code: 'UnexpectedOperationUrl', class: 'unknown' });
    expect(arm.calls.filter((c) => c.method === 'GET')).toEqual([]);
  });

  it('an operation still InProgress when the step runs out of time is unknown', async () => {
    arm.script({ kind: 'accepted', polls: Number.POSITIVE_INFINITY, retryAfter: 5 });
    const budget = time.timeout(60_000);
    const { azure } = provider();
    expect(await azure.reboot(node(providerIdOf('3')), budget)).toMatchObject({ ok: false, code: 'OperationStillRunning', class: 'unknown' });
    expect(restarts()).toBe(1);
  });
});

describe('inspect() asks ARM what became of a step, and never sends it', () => {
  it('polls the operation this process was handed, until it ends', async () => {
    arm.script({ kind: 'accepted', polls: 4, retryAfter: 5 });
    const { azure } = provider();
    const requestedAt = time.now();
    const budget = time.timeout(6_000);
    expect(await azure.reboot(node(providerIdOf('3')), budget)).toMatchObject({ class: 'unknown', code: 'OperationStillRunning' });
    const looks = [];
    for (let i = 0; i < 4; i += 1) looks.push((await azure.inspect('reboot', node(providerIdOf('3')), requestedAt, signal())).state);
    expect(looks).toEqual(['running', 'running', 'running', 'succeeded']);
    expect(arm.calls.filter((c) => c.path.endsWith('/instanceView'))).toEqual([]);
    expect(restarts()).toBe(1);
  });

  it('an operation URL that no longer answers (404) gives way to the instance view', async () => {
    arm.script({ kind: 'accepted', polls: Number.POSITIVE_INFINITY, retryAfter: 5 });
    const { azure } = provider();
    const requestedAt = time.now();
    await azure.reboot(node(providerIdOf('3')), time.timeout(1_000));
    arm.reset();
    arm.setInstance('3', { provisioning: 'updating', time: new Date(requestedAt).toISOString(), power: 'running' });
    expect(await azure.inspect('reboot', node(providerIdOf('3')), requestedAt, signal())).toMatchObject({ state: 'running', detail: 'the instance is updating (power state running)' });
    expect(arm.calls.map((c) => (c.path.endsWith('/instanceView') ? 'instance view' : c.path.includes('/operations/') ? 'operation' : c.path))).toEqual([
      'operation',
      'instance view',
    ]);
  });

  it('reads the instance view when it holds no operation URL: updating is running, then succeeded after the request', async () => {
    arm.script({ kind: 'accepted-then-error', polls: 1 });
    const { azure } = provider();
    const requestedAt = time.now();
    await azure.reboot(node(providerIdOf('3')), signal());
    expect(await azure.inspect('reboot', node(providerIdOf('3')), requestedAt, signal())).toEqual({ state: 'running', detail: 'the instance is updating (power state running)' });
    expect(await azure.inspect('reboot', node(providerIdOf('3')), requestedAt, signal())).toMatchObject({ state: 'succeeded' });
    expect(arm.calls.filter((c) => c.path.endsWith('/instanceView'))).toHaveLength(2);
    expect(restarts()).toBe(1);
  });

  it('an instance whose last operation ended before the request never got it: not-started', async () => {
    const { azure } = provider();
    arm.setInstance('3', { provisioning: 'succeeded', time: new Date(time.now() - 60_000).toISOString(), power: 'running' });
    expect(await azure.inspect('reimage', node(providerIdOf('3')), time.now(), signal())).toMatchObject({ state: 'not-started' });
    arm.setInstance('3', { provisioning: 'failed/InternalOperationError', time: new Date(time.now() - 60_000).toISOString(), power: 'running' });
    expect(await azure.inspect('reimage', node(providerIdOf('3')), time.now(), signal())).toMatchObject({ state: 'not-started' });
    expect(arm.actionCalls()).toEqual([]);
  });

  it("an operation that failed after the request is failed, with the code from the instance's provisioning state", async () => {
    arm.script({ kind: 'accepted-then-error', polls: 0, result: 'Failed', error: { code: 'OSProvisioningTimedOut', message: 'OS provisioning did not finish in time.' } });
    const { azure } = provider();
    const requestedAt = time.now();
    await azure.reimage(node(providerIdOf('3')), signal());
    expect(await azure.inspect('reimage', node(providerIdOf('3')), requestedAt, signal())).toEqual({
      state: 'failed',
      failure: { ok: false, code: 'OSProvisioningTimedOut', message: 'OS provisioning did not finish in time.', class: 'failed' },
    });
  });

  it('an operation URL from before the request is not trusted: the instance view answers instead', async () => {
    arm.script({ kind: 'accepted', polls: 0 });
    const { azure } = provider();
    // Accepted, then the step stopped waiting at once; a minute later a new request is inspected.
    await azure.reboot(node(providerIdOf('3')), time.timeout(0));
    await time.sleep(60_000, signal());
    expect(await azure.inspect('reboot', node(providerIdOf('3')), time.now(), signal())).toMatchObject({ state: 'not-started' });
    expect(arm.calls.filter((c) => c.path.endsWith('/instanceView'))).toHaveLength(1);
  });

  it('reads a provisioning state without a time as unreadable (ask again), never as not-started', () => {
    expect(statusOfInstanceView([{ code: 'ProvisioningState/succeeded' }, { code: 'PowerState/running' }], 0)).toMatchObject({
      state: 'failed',
      failure: { code: 'InstanceViewWithoutTime', class: 'transient' },
    });
    expect(statusOfInstanceView([{ code: 'PowerState/running' }], 0)).toMatchObject({ state: 'failed', failure: { class: 'transient' } });
    expect(statusOfInstanceView([{ code: 'ProvisioningState/creating/OSProvisioningInprogress', time: null }], 0)).toMatchObject({ state: 'running' });
  });
});

describe('a step run to its outcome through the ARM stand-in', () => {
  function runner(overrides: Partial<StepRunOptions> = {}) {
    const { azure } = provider();
    const options: StepRunOptions = { signal: signal(), budgetMs: 900_000, now: time.now, sleep: time.sleep, timeout: time.timeout, random: () => 0.5, ...overrides };
    return { azure, run: (step: 'reboot' | 'reimage' = 'reboot') => runStepToOutcome(azure, step, node(providerIdOf('3')), options) };
  }

  it('a 409 followed by success is one step that ended: no error, no reimage', async () => {
    arm.script({ kind: 'conflict' }, { kind: 'conflict' }, { kind: 'ok' });
    expect(await runner().run()).toMatchObject({ kind: 'ended' });
    expect([restarts(), arm.started('3', 'restart'), arm.actionCalls('reimage').length]).toEqual([3, 1, 0]);
  });

  it('429 with Retry-After is waited out, then the same step succeeds', async () => {
    arm.script({ kind: 'throttle', retryAfter: 7 }, { kind: 'ok' });
    expect(await runner().run()).toMatchObject({ kind: 'ended' });
    expect(time.waits).toEqual([7_000]);
  });

  it('500 after the body was read: zero duplicate POSTs, the restart is followed through the instance view to its end', async () => {
    arm.script({ kind: 'accepted-then-error', polls: 2 });
    expect(await runner().run()).toMatchObject({ kind: 'ended' });
    expect([restarts(), arm.started('3', 'restart')]).toEqual([1, 1]);
  });

  it('a request that hangs after ARM accepted it: zero duplicate POSTs', async () => {
    arm.script({ kind: 'accepted-then-hang', polls: 1 });
    const { azure } = { azure: new AzureProvider(azureConfig({ requestTimeoutSeconds: 0.2 }), { sleep: time.sleep, now: time.now }) };
    const outcome = await runStepToOutcome(azure, 'reboot', node(providerIdOf('3')), { signal: signal(), budgetMs: 900_000, now: time.now, sleep: time.sleep, timeout: time.timeout });
    expect(outcome).toMatchObject({ kind: 'ended' });
    expect([restarts(), arm.started('3', 'restart')]).toEqual([1, 1]);
  });

  it('a hung long-running operation is inconclusive, not failed: sent once, nothing escalated', async () => {
    arm.script({ kind: 'accepted', polls: Number.POSITIVE_INFINITY, retryAfter: 10 });
    const outcome = await runner({ budgetMs: 300_000 }).run();
    expect(outcome).toMatchObject({ kind: 'inconclusive', failure: { class: 'unknown' } });
    expect([restarts(), arm.actionCalls('reimage').length]).toEqual([1, 0]);
  });

  it('a 202 with an operation URL we refuse is followed through the instance view, never re-sent', async () => {
    arm.script({ kind: 'accepted', polls: 1, operationUrl: 'http://127.0.0.2:9/operations/elsewhere' });
    expect(await runner().run()).toMatchObject({ kind: 'ended' });
    expect(restarts()).toBe(1);
  });

  it('a 500 that did nothing is sent again only after the instance view shows it never started', async () => {
    arm.script({ kind: 'server-error', status: 503 }, { kind: 'ok' });
    expect(await runner().run()).toMatchObject({ kind: 'ended' });
    expect([restarts(), arm.started('3', 'restart')]).toEqual([2, 1]);
    const order = arm.calls.map((c) => (c.method === 'POST' ? 'POST' : c.path.endsWith('/instanceView') ? 'view' : 'other'));
    expect(order).toEqual(['POST', 'view', 'POST']);
  });

  it('a 403 is permanent after one POST; a failed operation is failed', async () => {
    arm.script({ kind: 'forbidden' });
    expect(await runner().run()).toMatchObject({ kind: 'permanent', failure: { code: 'AuthorizationFailed' } });
    arm.script({ kind: 'accepted', result: 'Failed', error: { code: 'VMRestartTimedOut', message: 'timed out' } });
    expect(await runner().run()).toMatchObject({ kind: 'failed', failure: { code: 'VMRestartTimedOut' } });
  });

  it("a new leader resuming its predecessor's restart inspects first and sends nothing", async () => {
    arm.script({ kind: 'accepted', polls: 3, retryAfter: 5 });
    const requestedAt = time.now();
    const predecessor = provider().azure;
    await predecessor.reboot(node(providerIdOf('3')), time.timeout(1_000));
    expect(restarts()).toBe(1);
    expect(await runner({ inspectFirst: true, requestedAt }).run()).toMatchObject({ kind: 'ended' });
    expect(restarts()).toBe(1);
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
    // Nothing reached ARM, so trying again is safe: transient.
    expect(result).toEqual({ ok: false, code: 'invalid_client', message: expect.stringContaining('AADSTS700211'), class: 'transient' });
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
    expect(result).toMatchObject({ ok: false, code: 'NotAScaleSetInstance', class: 'permanent' });
    expect(await azure.inspect('reboot', node(providerID), time.now(), signal())).toMatchObject({ state: 'failed', failure: { code: 'NotAScaleSetInstance', class: 'permanent' } });
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
