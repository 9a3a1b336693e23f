import type { V1Node } from '@kubernetes/client-node';
import { KubeApiError, type KubeClient } from '../../common/kube/kubeClient.js';
import type { ControllerConfig } from '../config/controllerConfig.js';
import { describeApiError } from '../nodeWrites.js';
import { AgentProvider, type NodeAnnotator, type NodeApiError, type NodeReader } from './agentProvider.js';
import { AzureProvider } from './azureProvider.js';
import { DryRunProvider } from './dryRunProvider.js';
import type { RemediationProvider } from './provider.js';

/** The provider the config names; `dry-run` unless told otherwise. */
export function createProvider(config: ControllerConfig, client: KubeClient): RemediationProvider {
  switch (config.provider.type) {
    case 'dry-run':
      return new DryRunProvider();
    case 'azure':
      return new AzureProvider(config.provider.azure);
    case 'agent':
      return new AgentProvider(annotateNode(client), readNode(client), config.provider.agent.rebootRequestAnnotation);
  }
}

const nodePath = (name: string) => `/api/v1/nodes/${encodeURIComponent(name)}`;

/** Sets annotations on a Node; a refusal carries the API server's Status reason (e.g. Forbidden) and HTTP code. */
function annotateNode(client: KubeClient): NodeAnnotator {
  return async (name, annotations, signal) => {
    try {
      await client.request('PATCH', nodePath(name), { body: { metadata: { annotations } }, patch: 'merge', signal });
    } catch (err) {
      throw apiError(err);
    }
  };
}

function readNode(client: KubeClient): NodeReader {
  return async (name, signal) => {
    try {
      return await client.request<V1Node>('GET', nodePath(name), { signal });
    } catch (err) {
      throw apiError(err);
    }
  };
}

/** Status and reason only when the API server answered: no answer leaves the outcome unknown. */
function apiError(err: unknown): NodeApiError {
  const error: NodeApiError = new Error(describeApiError(err));
  if (err instanceof KubeApiError && err.status > 0) {
    error.status = err.status;
    // KubeClient says HTTP<code> when the answer held no Status reason.
    if (err.reason !== `HTTP${err.status}`) error.reason = err.reason;
  }
  return error;
}
