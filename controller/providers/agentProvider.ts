import type { V1Node } from '@kubernetes/client-node';
import type { Step } from '../remediationState.js';
import { failure, type FailureClass, type ProviderFailure, type ProviderResult, type ProviderTarget, type RemediationProvider, type StepStatus } from './provider.js';

/**
 * Asks the node's own agent to reboot its host, kured-style: the controller sets the request
 * annotation on the Node to the boot ID it saw (status.nodeInfo.bootID), and the agent on that
 * node, which watches its own Node, reboots only while that value is its current boot ID. Once
 * the host has rebooted its boot ID is new, so the request is void whatever either clock says.
 * Reimage and redeploy need the cloud: they are refused for good (`NotSupported`).
 */
export type NodeAnnotator = (nodeName: string, annotations: Record<string, string>, signal: AbortSignal) => Promise<void>;
export type NodeReader = (nodeName: string, signal: AbortSignal) => Promise<V1Node>;

/** What a NodeAnnotator or NodeReader throws: the API server's Status reason and HTTP code, if it answered. */
export interface NodeApiError extends Error {
  reason?: string;
  status?: number;
}

export class AgentProvider implements RemediationProvider {
  readonly name = 'agent';

  constructor(
    private readonly annotate: NodeAnnotator,
    private readonly readNode: NodeReader,
    private readonly requestAnnotation: string,
  ) {}

  async reboot(target: ProviderTarget, signal: AbortSignal): Promise<ProviderResult> {
    const { bootID } = target;
    if (!bootID) return noBootID(target);
    try {
      await this.annotate(target.name, { [this.requestAnnotation]: bootID }, signal);
    } catch (err) {
      // No answer or a 5xx: the patch may have landed; inspect() reads the Node to find out.
      return apiFailure(err, 'RebootRequestFailed', `could not set ${this.requestAnnotation}`, writeClass);
    }
    return { ok: true, detail: `asked the node's agent to reboot boot ${bootID} (${this.requestAnnotation}=${bootID})` };
  }

  reimage(): Promise<ProviderResult> {
    return Promise.resolve(notSupported('reimage'));
  }

  redeploy(): Promise<ProviderResult> {
    return Promise.resolve(notSupported('redeploy'));
  }

  async inspect(step: Step, target: ProviderTarget, _requestedAt: number, signal: AbortSignal): Promise<StepStatus> {
    if (step !== 'reboot') return { state: 'failed', failure: notSupported(step) };
    const requestedFor = target.bootID;
    if (!requestedFor) return { state: 'failed', failure: noBootID(target) };
    let node: V1Node;
    try {
      node = await this.readNode(target.name, signal);
    } catch (err) {
      return { state: 'failed', failure: apiFailure(err, 'NodeReadFailed', `could not read node ${target.name}`, readClass) };
    }
    const current = node.status?.nodeInfo?.bootID;
    const request = node.metadata?.annotations?.[this.requestAnnotation];
    if (current && current !== requestedFor) return { state: 'succeeded', detail: `the node booted again: boot ID ${requestedFor} -> ${current}` };
    if (request === requestedFor) return { state: 'running', detail: `${this.requestAnnotation}=${request} is set and the node has not rebooted yet` };
    return { state: 'not-started', detail: `${this.requestAnnotation} is ${request === undefined ? 'not set' : `"${request}"`}, not boot ${requestedFor}` };
  }
}

function notSupported(step: string): ProviderFailure {
  return failure('NotSupported', `the agent provider can only reboot a node; ${step} needs a cloud provider (provider.type: azure)`, 'permanent');
}

function noBootID(target: ProviderTarget): ProviderFailure {
  return failure('NoBootID', `node ${target.name} reports no status.nodeInfo.bootID; the agent provider keys its reboot request on it`, 'permanent');
}

/** A write: no answer, or a 5xx, may have been applied; a conflict or throttling was not; other refusals stay. */
function writeClass(status: number | undefined): FailureClass {
  if (status === undefined || status >= 500) return 'unknown';
  if (status === 409 || status === 429) return 'transient';
  return 'permanent';
}

/** A read changes nothing: only a node that is gone (404) or that we may not read (403) is final. */
function readClass(status: number | undefined): FailureClass {
  return status === 403 || status === 404 ? 'permanent' : 'transient';
}

function apiFailure(err: unknown, fallbackCode: string, doing: string, classOf: (status: number | undefined) => FailureClass): ProviderFailure {
  const { reason, status, message } = err as NodeApiError;
  return failure(typeof reason === 'string' && reason !== '' ? reason : fallbackCode, `${doing}: ${message}`, classOf(status));
}
