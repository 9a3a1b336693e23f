import { ApiException, PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Node, type V1Taint } from '@kubernetes/client-node';

/**
 * Every write the controller makes to a Node: JSON merge patches that carry the
 * resourceVersion the decision was based on, so the API server refuses them (409) when the
 * Node changed in between. A refused write is reported as `conflict`, never retried blindly:
 * the next pass decides again from the fresh object.
 */
export type WriteResult = { ok: true; node: V1Node } | { ok: false; conflict: boolean; error: string };

export class NodeWriter {
  constructor(private readonly api: CoreV1Api) {}

  /** Sets (string) or removes (null) annotations and labels. */
  patchMetadata(node: V1Node, changes: { annotations?: Record<string, string | null>; labels?: Record<string, string | null> }): Promise<WriteResult> {
    return this.patch(node, { metadata: { resourceVersion: node.metadata?.resourceVersion, ...changes } });
  }

  /** Replaces the whole taint list (a merge patch cannot edit one element of a list). */
  setTaints(node: V1Node, taints: V1Taint[]): Promise<WriteResult> {
    return this.patch(node, { metadata: { resourceVersion: node.metadata?.resourceVersion }, spec: { taints } });
  }

  async read(name: string): Promise<V1Node | undefined> {
    try {
      return await this.api.readNode({ name });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  private async patch(node: V1Node, body: unknown): Promise<WriteResult> {
    const name = node.metadata?.name ?? '';
    try {
      return { ok: true, node: await this.api.patchNode({ name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)) };
    } catch (err) {
      const conflict = err instanceof ApiException && err.code === 409;
      return { ok: false, conflict, error: describeApiError(err) };
    }
  }
}

export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? safeJson(err.body) : err.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return `HTTP ${err.code}${typeof message === 'string' ? `: ${message}` : ''}`;
  }
  return (err as Error).message ?? String(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
