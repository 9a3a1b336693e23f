import { ApiException, PatchStrategy, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';
import type { ControllerConfig } from '../config/controllerConfig.js';
import { describeApiError } from '../nodeWrites.js';
import { AgentProvider, type NodeAnnotator, type NodeApiError, type NodeReader } from './agentProvider.js';
import { AzureProvider } from './azureProvider.js';
import { DryRunProvider } from './dryRunProvider.js';
import type { RemediationProvider } from './provider.js';

/** The provider the config names; `dry-run` unless told otherwise. */
export function createProvider(config: ControllerConfig, core: CoreV1Api): RemediationProvider {
  switch (config.provider.type) {
    case 'dry-run':
      return new DryRunProvider();
    case 'azure':
      return new AzureProvider(config.provider.azure);
    case 'agent':
      return new AgentProvider(annotateNode(core), readNode(core), config.provider.agent.rebootRequestAnnotation);
  }
}

/** Sets annotations on a Node; a refusal carries the API server's Status reason (e.g. Forbidden) and HTTP code. */
function annotateNode(core: CoreV1Api): NodeAnnotator {
  return async (name, annotations) => {
    try {
      await core.patchNode({ name, body: { metadata: { annotations } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    } catch (err) {
      throw apiError(err);
    }
  };
}

function readNode(core: CoreV1Api): NodeReader {
  return async (name) => {
    try {
      return await core.readNode({ name });
    } catch (err) {
      throw apiError(err);
    }
  };
}

function apiError(err: unknown): NodeApiError {
  const error: NodeApiError = new Error(describeApiError(err));
  if (err instanceof ApiException) {
    error.status = err.code;
    const body = parse(err.body);
    if (typeof body?.reason === 'string') error.reason = body.reason;
  }
  return error;
}

function parse(body: unknown): { reason?: unknown } | undefined {
  if (typeof body !== 'string') return body as { reason?: unknown } | undefined;
  try {
    return JSON.parse(body) as { reason?: unknown };
  } catch {
    return undefined;
  }
}
