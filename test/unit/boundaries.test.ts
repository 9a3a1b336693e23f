import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The programs share code only through common/; this reads every import to keep it so.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2] ?? '');
}

/**
 * What a file loads when it runs: every import and export-from but `import type` / `export
 * type`, which tsc erases. Under verbatimModuleSyntax `import { type A }` is kept as
 * `import {} from`, so it loads its module like any other and counts here.
 */
function runtimeImports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)(\s+type\b)?[^'";]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)]
    .filter((m) => m[1] === undefined)
    .map((m) => m[2] ?? m[3] ?? m[4] ?? '');
}

/** The packages a program loads at run time: the runtime imports of every module it reaches from `entry`. */
function runtimePackages(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of runtimeImports(file)) {
      if (spec.startsWith('.')) visit(relative(root, resolve(root, dirname(file), spec.replace(/\.js$/, '.ts'))));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  };
  visit(entry);
  return packages;
}

/** Top-level folders a file's relative imports reach. */
function reached(file: string): string[] {
  return imports(file)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => relative(root, resolve(root, dirname(file), spec)).split('/')[0] ?? '');
}

describe('code boundaries between the programs', () => {
  it('the controller imports nothing from agent/', () => {
    const offenders = sources('controller').filter((f) => reached(f).includes('agent'));
    expect(offenders).toEqual([]);
  });

  it('the agent imports nothing from controller/', () => {
    const offenders = sources('agent').filter((f) => reached(f).includes('controller'));
    expect(offenders).toEqual([]);
  });

  it('common/ imports from neither program nor the tools', () => {
    const offenders = sources('common').filter((f) => reached(f).some((top) => top === 'agent' || top === 'controller' || top === 'tools'));
    expect(offenders).toEqual([]);
  });

  it('the operator tools (tools/: the doctor) import nothing from agent/ or controller/', () => {
    const offenders = sources('tools').filter((f) => reached(f).some((top) => top === 'agent' || top === 'controller'));
    expect(offenders).toEqual([]);
  });

  it('the contract module has no dependencies at all', () => {
    expect(imports('common/contract.ts')).toEqual([]);
  });

  it('the controller does not load @kubernetes/client-node at run time (its types only: the runtime costs ~73 MiB RSS and a TLS connection per request)', () => {
    const packages = runtimePackages('controller/cli.ts');
    expect([...packages].filter((p) => p.startsWith('@kubernetes/'))).toEqual([]);
    // The walk reaches the controller's real dependencies (it would see client-node too).
    expect(packages).toContain('prom-client');
    expect(runtimePackages('test/integration/controllerCache.test.ts')).toContain('@kubernetes/client-node');
  });

  it('the agent does not load @kubernetes/client-node at run time either', () => {
    expect([...runtimePackages('agent/cli.ts')].filter((p) => p.startsWith('@kubernetes/'))).toEqual([]);
  });

  it('the check sees imports (it would catch a violation)', () => {
    expect(reached('controller/cli.ts')).toContain('common');
    expect(reached('tools/doctor/judging.ts')).toContain('common');
  });
});
