import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for Azure Resource Manager's Compute actions on loopback, following the documented
 * contract: POST .../virtualMachineScaleSets/{vmss}/virtualMachines/{id}/{restart|reimage|redeploy}
 * answers 200, or 202 with Azure-AsyncOperation and Location headers to poll; throttling is 429
 * with Retry-After; errors are CloudError bodies ({"error":{"code","message"}}).
 * GET .../virtualMachines/{id}/instanceView answers the real shape: statuses with one
 * `ProvisioningState/<state>` (updating while an action runs, then succeeded or
 * failed/<code>, with the time it got there) and one `PowerState/<state>`.
 *
 * An operation advances only when someone looks at it: each GET of its operation URL, or of
 * its instance's view, answers InProgress while `polls` remain, then the final status. So
 * tests are deterministic without clocks.
 *
 * It counts every call, every POST per instance and action, and every operation it actually
 * started, so a test can assert that no action was sent twice; scale-set-level actions are
 * recorded separately: those must never arrive.
 */
export type ArmBehaviour =
  | { kind: 'ok' }
  | ({ kind: 'accepted' } & OperationScript & {
      /** Which header to offer: both (as ARM does for Compute) or only Location. */
      via?: 'azure-async' | 'location';
      retryAfter?: number;
      /** Overrides the Azure-AsyncOperation URL (to test where the client may follow it). */
      operationUrl?: string;
    })
  | { kind: 'throttle'; retryAfter?: number | string }
  /** 5xx and nothing done. */
  | { kind: 'server-error'; status?: number; retryAfter?: number }
  /** 409 OperationNotAllowed: another operation is in progress on the instance; nothing done. */
  | { kind: 'conflict'; retryAfter?: number }
  /** 401 ExpiredAuthenticationToken; nothing done. */
  | { kind: 'unauthorized' }
  | { kind: 'forbidden' }
  | { kind: 'error'; status: number; code: string; message: string }
  /** ARM starts the operation after reading the request, then answers 5xx anyway. */
  | ({ kind: 'accepted-then-error'; status?: number } & OperationScript)
  /** ARM starts the operation and never answers the request. */
  | ({ kind: 'accepted-then-hang' } & OperationScript);

interface OperationScript {
  /** Looks answered InProgress before the final status (Infinity: a hung operation). */
  polls?: number;
  result?: 'Succeeded' | 'Failed' | 'Canceled';
  error?: { code: string; message: string };
}

export interface ArmCall {
  method: string;
  path: string;
  apiVersion: string | null;
  authorization: string | undefined;
  /** restart | reimage | redeploy for action calls. */
  action?: string;
  instanceId?: string;
  scaleSetLevel: boolean;
}

/** An instance's state as its instance view shows it. */
export interface InstanceState {
  /** `succeeded`, `updating`, `failed/<code>`, ... */
  provisioning: string;
  /** When it reached that state (ISO 8601). */
  time: string;
  power: string;
}

export interface ArmStandIn {
  url: string;
  calls: ArmCall[];
  /** POSTs of instance actions (optionally only one action). */
  actionCalls(action?: string): ArmCall[];
  scaleSetLevelCalls(): ArmCall[];
  /** POSTs that arrived for one instance and action, whatever ARM did with them. */
  posts(instanceId: string, action: string): number;
  /** Operations ARM actually started on one instance for one action: more than one is a duplicate. */
  started(instanceId: string, action: string): number;
  /** Behaviours for the next action POSTs, in order; when empty: accepted, one poll, Succeeded. */
  script(...behaviours: ArmBehaviour[]): void;
  /** Sets what an instance's view shows (instances are told apart by their id alone). */
  setInstance(instanceId: string, state: InstanceState): void;
  instance(instanceId: string): InstanceState;
  /** Forgets calls, counts, scripts and instance states. */
  reset(): void;
  close(): Promise<void>;
}

interface Operation {
  remaining: number;
  result: 'Succeeded' | 'Failed' | 'Canceled';
  error?: { code: string; message: string };
  retryAfter: number;
  instanceId: string;
  acceptedAt: number;
  done: boolean;
}

const instancePath =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/([^/]+)\/(restart|reimage|redeploy)$/i;
const instanceViewPath =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/virtualMachines\/([^/]+)\/instanceView$/i;
const scaleSetPath =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/virtualMachineScaleSets\/([^/]+)\/(restart|reimage|reimageall|redeploy|start|poweroff|deallocate)$/i;
const operationPath = /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.Compute\/locations\/([^/]+)\/operations\/([^/]+)$/i;

export async function startArmStandIn(options: {
  token: string;
  location?: string;
  /** ARM's clock, for the times in operations and instance views (tests share a fake one). */
  now?: () => number;
}): Promise<ArmStandIn> {
  const now = options.now ?? Date.now;
  const calls: ArmCall[] = [];
  const queue: ArmBehaviour[] = [];
  const operations = new Map<string, Operation>();
  const instances = new Map<string, InstanceState>();
  const startedCount = new Map<string, number>();
  const location = options.location ?? 'eastus';
  let base = '';

  /** A VM created a day ago, running, its last operation long done. */
  const instanceState = (instanceId: string): InstanceState => {
    let state = instances.get(instanceId);
    if (!state) {
      state = { provisioning: 'succeeded', time: new Date(now() - 86_400_000).toISOString(), power: 'running' };
      instances.set(instanceId, state);
    }
    return state;
  };
  /** The operation under way on an instance, if any. */
  const runningOn = (instanceId: string) => [...operations.values()].find((op) => op.instanceId === instanceId && !op.done);
  /** One look at an operation: InProgress while polls remain, then it ends and the instance shows it. */
  const observe = (op: Operation): 'InProgress' | Operation['result'] => {
    if (op.done) return op.result;
    if (op.remaining > 0) {
      op.remaining -= 1;
      return 'InProgress';
    }
    op.done = true;
    const state = instanceState(op.instanceId);
    // Strictly after acceptance, so "after the request" never ties on a millisecond.
    state.time = new Date(Math.max(now(), op.acceptedAt + 1)).toISOString();
    state.provisioning = op.result === 'Succeeded' ? 'succeeded' : `failed/${op.error?.code ?? `Operation${op.result}`}`;
    state.power = 'running';
    return op.result;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', base);
    const call: ArmCall = {
      method: req.method ?? '',
      path: url.pathname,
      apiVersion: url.searchParams.get('api-version'),
      authorization: req.headers.authorization,
      scaleSetLevel: false,
    };
    calls.push(call);
    if (req.headers.authorization !== `Bearer ${options.token}`) {
      return cloudError(res, 401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    }
    if (!call.apiVersion) {
      return cloudError(res, 400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
    }
    const instance = instancePath.exec(url.pathname);
    const view = instanceViewPath.exec(url.pathname);
    const scaleSet = scaleSetPath.exec(url.pathname);
    const operation = operationPath.exec(url.pathname);
    if (req.method === 'POST' && instance) {
      call.action = instance[5]?.toLowerCase();
      call.instanceId = instance[4];
      return act(res, queue.shift() ?? { kind: 'accepted', polls: 1 }, instance[1] ?? '', url.pathname, call.instanceId ?? '', call.action ?? '');
    }
    if (req.method === 'POST' && scaleSet) {
      // Would act on every VM of the scale set; answered like ARM would, so a test sees it happen.
      call.scaleSetLevel = true;
      call.action = scaleSet[4]?.toLowerCase();
      res.writeHead(202).end();
      return;
    }
    if (req.method === 'GET' && view) return instanceView(res, view[4] ?? '');
    if (req.method === 'GET' && operation) return poll(res, operation[3] ?? '', url.searchParams.get('monitor') === 'true');
    return cloudError(res, 404, 'NotFound', `no route for ${req.method} ${url.pathname}`);
  };

  const start = (instanceId: string, action: string, script: OperationScript, retryAfter = 0): string => {
    const id = randomUUID();
    const op: Operation = {
      remaining: script.polls ?? 1,
      result: script.result ?? 'Succeeded',
      retryAfter,
      instanceId,
      acceptedAt: now(),
      done: false,
    };
    if (script.error) op.error = script.error;
    operations.set(id, op);
    const key = `${instanceId}/${action}`;
    startedCount.set(key, (startedCount.get(key) ?? 0) + 1);
    const state = instanceState(instanceId);
    state.provisioning = 'updating';
    state.time = new Date(op.acceptedAt).toISOString();
    return id;
  };

  const act = (res: ServerResponse, behaviour: ArmBehaviour, subscription: string, scope: string, instanceId: string, action: string) => {
    switch (behaviour.kind) {
      case 'ok': {
        const key = `${instanceId}/${action}`;
        startedCount.set(key, (startedCount.get(key) ?? 0) + 1);
        Object.assign(instanceState(instanceId), { provisioning: 'succeeded', time: new Date(now()).toISOString(), power: 'running' });
        res.writeHead(200, { 'content-type': 'application/json' }).end('');
        return;
      }
      case 'throttle':
        res.setHeader('retry-after', String(behaviour.retryAfter ?? 0));
        return cloudError(res, 429, 'TooManyRequests', 'The request is being throttled as the limit has been reached for operation type.');
      case 'server-error':
        res.setHeader('retry-after', String(behaviour.retryAfter ?? 0));
        return cloudError(res, behaviour.status ?? 500, 'InternalServerError', 'An internal execution error occurred. Please retry later.');
      case 'conflict':
        if (behaviour.retryAfter !== undefined) res.setHeader('retry-after', String(behaviour.retryAfter));
        return cloudError(
          res,
          409,
          'OperationNotAllowed',
          `Operation '${action}' is not allowed on VM '${instanceId}' since another operation is in progress on it. For more information on your operations, please refer to https://aka.ms/activitylog.`,
        );
      case 'unauthorized':
        return cloudError(res, 401, 'ExpiredAuthenticationToken', 'The access token expiry UTC time is earlier than current UTC time.');
      case 'forbidden':
        return cloudError(
          res,
          403,
          'AuthorizationFailed',
          `The client '00000000-0000-0000-0000-0000000000aa' with object id '00000000-0000-0000-0000-0000000000aa' does not have authorization to perform action 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/restart/action' over scope '${scope}' or the scope is invalid; access is denied because of the deny assignment with name 'AKS node resource group lockdown'.`,
        );
      case 'error':
        return cloudError(res, behaviour.status, behaviour.code, behaviour.message);
      case 'accepted-then-error':
        start(instanceId, action, behaviour);
        return cloudError(res, behaviour.status ?? 500, 'InternalServerError', 'An internal execution error occurred. Please retry later.');
      case 'accepted-then-hang':
        start(instanceId, action, behaviour);
        return;
      case 'accepted': {
        const id = start(instanceId, action, behaviour, behaviour.retryAfter ?? 0);
        const opUrl = `${base}/subscriptions/${subscription}/providers/Microsoft.Compute/locations/${location}/operations/${id}?api-version=2024-07-01`;
        const headers: Record<string, string> = {
          location: `${opUrl}&monitor=true`,
          'retry-after': String(behaviour.retryAfter ?? 0),
        };
        if (behaviour.via !== 'location') headers['azure-asyncoperation'] = behaviour.operationUrl ?? opUrl;
        res.writeHead(202, headers).end();
        return;
      }
    }
  };

  const instanceView = (res: ServerResponse, instanceId: string) => {
    const op = runningOn(instanceId);
    if (op) observe(op);
    const state = instanceState(instanceId);
    const [phase = '', code] = state.provisioning.split('/');
    const provisioning = {
      code: `ProvisioningState/${state.provisioning}`,
      level: phase === 'failed' ? 'Error' : 'Info',
      displayStatus: phase === 'failed' ? 'Provisioning failed' : phase === 'succeeded' ? 'Provisioning succeeded' : 'Updating',
      message: phase === 'failed' ? (op?.error?.message ?? `the operation failed with ${code}`) : null,
      time: state.time,
    };
    return json(res, 200, {
      platformUpdateDomain: 0,
      platformFaultDomain: 0,
      vmAgent: { vmAgentVersion: '2.7.41491.1102', statuses: [] },
      disks: [],
      statuses: [provisioning, { code: `PowerState/${state.power}`, level: 'Info', displayStatus: `VM ${state.power}`, message: null, time: null }],
    });
  };

  const poll = (res: ServerResponse, id: string, monitor: boolean) => {
    const op = operations.get(id);
    if (!op) return cloudError(res, 404, 'NotFound', `operation ${id} not found`);
    const status = observe(op);
    if (status === 'InProgress') {
      if (monitor) {
        res.writeHead(202, { 'retry-after': String(op.retryAfter) }).end();
        return;
      }
      return json(res, 200, { name: id, status: 'InProgress', startTime: new Date(op.acceptedAt).toISOString() }, { 'retry-after': String(op.retryAfter) });
    }
    if (monitor) {
      if (status === 'Succeeded') {
        res.writeHead(200).end();
        return;
      }
      const error = op.error ?? { code: `Operation${status}`, message: `the operation was ${status.toLowerCase()}` };
      return cloudError(res, 500, error.code, error.message);
    }
    const body: Record<string, unknown> = { name: id, status, endTime: new Date(now()).toISOString() };
    if (op.error) body.error = op.error;
    return json(res, 200, body);
  };

  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handle(req, res));
  });
  const address = await listen(server);
  base = `http://127.0.0.1:${address.port}`;
  return {
    url: base,
    calls,
    actionCalls: (action) => calls.filter((c) => c.method === 'POST' && c.action !== undefined && !c.scaleSetLevel && (!action || c.action === action)),
    scaleSetLevelCalls: () => calls.filter((c) => c.scaleSetLevel),
    posts: (instanceId, action) => calls.filter((c) => c.method === 'POST' && !c.scaleSetLevel && c.instanceId === instanceId && c.action === action).length,
    started: (instanceId, action) => startedCount.get(`${instanceId}/${action}`) ?? 0,
    script: (...behaviours) => queue.push(...behaviours),
    setInstance: (instanceId, state) => void instances.set(instanceId, { ...state }),
    instance: (instanceId) => ({ ...instanceState(instanceId) }),
    reset: () => {
      calls.length = 0;
      queue.length = 0;
      operations.clear();
      instances.clear();
      startedCount.clear();
    },
    close: () => closeServer(server),
  };
}

/**
 * A stand-in for both token endpoints: Entra ID's (workload identity: client credentials with
 * the federated token as client assertion) and IMDS's (managed identity, `Metadata: true`).
 */
export interface TokenStandIn {
  url: string;
  entraRequests: URLSearchParams[];
  imdsRequests: URL[];
  close(): Promise<void>;
}

export async function startTokenStandIn(options: {
  tenantId: string;
  clientId: string;
  assertion: string;
  token: string;
  expiresInSeconds?: number;
}): Promise<TokenStandIn> {
  const entraRequests: URLSearchParams[] = [];
  const imdsRequests: URL[] = [];
  let base = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', base);
      const expiresIn = options.expiresInSeconds ?? 3599;
      if (req.method === 'POST' && url.pathname === `/${options.tenantId}/oauth2/v2.0/token`) {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        entraRequests.push(form);
        const valid =
          form.get('grant_type') === 'client_credentials' &&
          form.get('client_id') === options.clientId &&
          form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' &&
          form.get('client_assertion') === options.assertion &&
          form.get('scope') === 'https://management.azure.com/.default';
        if (!valid) {
          return json(res, 401, {
            error: 'invalid_client',
            error_description: 'AADSTS700211: No matching federated identity record found for presented assertion issuer.\r\nTrace ID: 0',
            error_codes: [700211],
          });
        }
        return json(res, 200, { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: options.token });
      }
      if (req.method === 'GET' && url.pathname === '/metadata/identity/oauth2/token') {
        imdsRequests.push(url);
        if (req.headers.metadata !== 'true') {
          return json(res, 400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
        }
        if (url.searchParams.get('api-version') !== '2018-02-01' || !url.searchParams.get('resource')) {
          return json(res, 400, { error: 'invalid_request', error_description: 'api-version and resource are required' });
        }
        return json(res, 200, {
          access_token: options.token,
          expires_in: String(expiresIn),
          expires_on: String(Math.floor(Date.now() / 1000) + expiresIn),
          resource: url.searchParams.get('resource'),
          token_type: 'Bearer',
        });
      }
      return json(res, 404, { error: 'not_found', error_description: `no route for ${req.method} ${url.pathname}` });
    });
  });
  const address = await listen(server);
  base = `http://127.0.0.1:${address.port}`;
  return { url: base, entraRequests, imdsRequests, close: () => closeServer(server) };
}

function cloudError(res: ServerResponse, status: number, code: string, message: string): void {
  json(res, status, { error: { code, message } });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

function listen(server: Server): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address() as AddressInfo));
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
