import { readFileSync } from 'node:fs';

/**
 * Compiled code and source held in a V8 heap snapshot, by script: every SharedFunctionInfo
 * points to its Script, and to its bytecode (or machine code) with its constant pool and
 * metadata; each object is counted once. Scripts are grouped into packages by their URL.
 */

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface CodeByPackage {
  package: string;
  functions: number;
  /** SharedFunctionInfos, bytecode, machine code and their metadata, bytes. */
  codeBytes: number;
  /** Source text on the heap, bytes (Node's own built-ins live in its binary and are not counted). */
  sourceBytes: number;
}

/** `node_modules/<pkg>` (scoped too), our own dist/, Node's fetch, or Node's other built-ins. */
export function packageOfScript(url: string): string {
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1] as string;
  if (/\/dist\/(agent|controller)\//.test(url)) return 'nodepulse';
  // Node's fetch: loaded on first use, so it is the agent's cost, not Node's baseline.
  if (url.startsWith('node:internal/deps/undici')) return 'undici (Node fetch)';
  if (url.startsWith('node:') || !url.includes('/')) return 'node (built-in)';
  return 'other';
}

export function codeByPackage(snapshotPath: string): CodeByPackage[] {
  const snap = JSON.parse(readFileSync(snapshotPath, 'utf8')) as HeapSnapshot;
  const meta = snap.snapshot.meta;
  const nodeWidth = meta.node_fields.length;
  const edgeWidth = meta.edge_fields.length;
  const [TYPE, NAME, SIZE, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number];
  const [EDGE_TYPE, EDGE_NAME, EDGE_TO] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const codeType = nodeTypes.indexOf('code');
  const stringTypes = new Set(['string', 'concatenated string', 'sliced string'].map((t) => nodeTypes.indexOf(t)));
  const internalEdge = edgeTypes.indexOf('internal');
  const { nodes, edges, strings } = snap;
  const count = nodes.length / nodeWidth;

  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++) firstEdge[i + 1] = (firstEdge[i] as number) + (nodes[i * nodeWidth + EDGES] as number) * edgeWidth;
  const internalTargets = (node: number) => {
    const out: Array<{ name: string; to: number }> = [];
    for (let e = firstEdge[node] as number; e < (firstEdge[node + 1] as number); e += edgeWidth) {
      if (edges[e + EDGE_TYPE] === internalEdge) out.push({ name: strings[edges[e + EDGE_NAME] as number] as string, to: (edges[e + EDGE_TO] as number) / nodeWidth });
    }
    return out;
  };
  const size = (node: number) => nodes[node * nodeWidth + SIZE] as number;
  const isCode = (node: number) => nodes[node * nodeWidth + TYPE] === codeType;

  const counted = new Uint8Array(count);
  const byPackage = new Map<string, CodeByPackage>();
  const entry = (pkg: string) => {
    let found = byPackage.get(pkg);
    if (!found) byPackage.set(pkg, (found = { package: pkg, functions: 0, codeBytes: 0, sourceBytes: 0 }));
    return found;
  };
  const scriptPackage = new Map<number, string>();
  for (let node = 0; node < count; node++) {
    if (!isCode(node)) continue;
    const targets = internalTargets(node);
    const script = targets.find((t) => t.name === 'script');
    if (!script) continue;
    let pkg = scriptPackage.get(script.to);
    if (pkg === undefined) {
      pkg = packageOfScript(strings[nodes[script.to * nodeWidth + NAME] as number] as string);
      scriptPackage.set(script.to, pkg);
      const source = internalTargets(script.to).find((t) => t.name === 'source');
      if (source && stringTypes.has(nodes[source.to * nodeWidth + TYPE] as number) && pkg !== 'node (built-in)') entry(pkg).sourceBytes += size(source.to);
    }
    const item = entry(pkg);
    item.functions++;
    // The function info itself, then its code objects and their metadata (not other functions).
    const pending = [node];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      if (counted[next]) continue;
      counted[next] = 1;
      item.codeBytes += size(next);
      for (const t of internalTargets(next)) {
        if (t.name !== 'script' && isCode(t.to) && !counted[t.to] && !internalTargets(t.to).some((x) => x.name === 'script')) pending.push(t.to);
      }
    }
  }
  return [...byPackage.values()].sort((a, b) => b.codeBytes + b.sourceBytes - (a.codeBytes + a.sourceBytes));
}
