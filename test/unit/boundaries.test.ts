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

  it('the check sees imports (it would catch a violation)', () => {
    expect(reached('controller/cli.ts')).toContain('common');
    expect(reached('tools/doctor/judging.ts')).toContain('common');
  });
});
