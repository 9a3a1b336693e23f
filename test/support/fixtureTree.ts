import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A throwaway directory tree standing in for /proc or /sys: tests write the kernel files they
 * need, rewrite them between samples, and remove the tree afterwards.
 */
export class FixtureTree {
  private constructor(readonly root: string) {}

  static async create(files: Record<string, string> = {}): Promise<FixtureTree> {
    const tree = new FixtureTree(await mkdtemp(join(tmpdir(), 'nodepulse-fixture-')));
    await tree.write(files);
    return tree;
  }

  /** Writes (or overwrites) files given by paths relative to the root; a path ending in `/` makes a directory. */
  async write(files: Record<string, string>): Promise<void> {
    for (const [path, content] of Object.entries(files)) {
      const target = join(this.root, path);
      if (path.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
  }

  async remove(path: string): Promise<void> {
    await rm(join(this.root, path), { recursive: true, force: true });
  }

  async dispose(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}
