import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { KubeApiError, type KubeClient } from '../common/kube/kubeClient.js';

/**
 * Every write the controller makes to a Node: JSON merge patches that carry the
 * resourceVersion the decision was based on, so the API server refuses them (409) when the
 * Node changed in between. A refused write is reported as `conflict`, never retried blindly:
 * the next pass decides again from the fresh object.
 */
export type WriteResult = { ok: true; node: V1Node } | { ok: false; conflict: boolean; error: string };

export interface MetadataChanges {
  /** Set (string) or removed (null). */
  annotations?: Record<string, string | null>;
  labels?: Record<string, string | null>;
}

const nodePath = (name: string) => `/api/v1/nodes/${encodeURIComponent(name)}`;

export class NodeWriter {
  constructor(private readonly client: KubeClient) {}

  /** Sets or removes annotations and labels. */
  patchMetadata(node: V1Node, changes: MetadataChanges): Promise<WriteResult> {
    return this.patch(node, { metadata: { resourceVersion: node.metadata?.resourceVersion, ...changes } });
  }

  /** Replaces the whole taint list (a merge patch cannot edit one element of a list), with any metadata changes in the same write. */
  setTaints(node: V1Node, taints: V1Taint[], changes: MetadataChanges = {}): Promise<WriteResult> {
    return this.patch(node, { metadata: { resourceVersion: node.metadata?.resourceVersion, ...changes }, spec: { taints } });
  }

  async read(name: string): Promise<V1Node | undefined> {
    try {
      return await this.client.request<V1Node>('GET', nodePath(name));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  private async patch(node: V1Node, body: unknown): Promise<WriteResult> {
    try {
      return { ok: true, node: await this.client.request<V1Node>('PATCH', nodePath(node.metadata?.name ?? ''), { body, patch: 'merge' }) };
    } catch (err) {
      const conflict = err instanceof KubeApiError && err.status === 409;
      return { ok: false, conflict, error: describeApiError(err) };
    }
  }
}

/** An API error as logs show it: the HTTP status first (0: no answer), then what was said. */
export function describeApiError(err: unknown): string {
  if (err instanceof KubeApiError) return err.status > 0 ? `HTTP ${err.status}: ${err.message}` : `${err.reason}: ${err.message}`;
  return (err as Error).message ?? String(err);
}
