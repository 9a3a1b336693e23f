import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { DiskSpaceProbe } from '../../agent/probes/diskSpaceProbe.js';
import type { Figures } from '../../agent/probes/probe.js';
import { FixtureTree } from '../support/fixtureTree.js';

const diskSpaceConfig = (overrides: Record<string, unknown> = {}) =>
  agentConfigSchema.parse({ probes: { diskSpace: overrides } }).probes.diskSpace;
const signal = () => new AbortController().signal;
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('disk space probe', () => {
  let tree: FixtureTree;
  let kubeletDir: string;
  let missingDir: string;

  beforeEach(async () => {
    tree = await FixtureTree.create({ 'kubelet/': '', 'containerd/': '' });
    kubeletDir = join(tree.root, 'kubelet');
    missingDir = join(tree.root, 'no-such-dir');
  });
  afterEach(async () => tree.dispose());

  it('reports used space and inodes of each path as df does', async () => {
    const r = await new DiskSpaceProbe(diskSpaceConfig({ paths: [kubeletDir], usedPercent: 100, inodesUsedPercent: 100 })).run(signal());
    expect(r).toMatchObject({ probe: 'diskSpace', healthy: true, reason: 'DiskSpaceNormal', figures: { missing: [], unreadable: {} } });
    const fs = (r.figures.paths as Figures)[kubeletDir] as Record<string, number>;
    // df rounds its percentages up; the test filesystem may change a little between the two reads.
    const [dfUsed, dfInodes] = execFileSync('df', ['--output=pcent,ipcent', kubeletDir], { encoding: 'utf8' })
      .split('\n')[1]!
      .trim()
      .split(/\s+/)
      .map((p) => Number.parseInt(p, 10));
    expect(Math.abs(Math.ceil(fs.usedPercent!) - dfUsed!)).toBeLessThanOrEqual(1);
    if (Number.isFinite(dfInodes)) expect(Math.abs(Math.ceil(fs.inodesUsedPercent!) - dfInodes!)).toBeLessThanOrEqual(1);
    expect(fs.sizeGiB).toBeGreaterThan(0);
    expect(fs.availGiB).toBeGreaterThanOrEqual(0);
    expect(fs.availGiB).toBeLessThanOrEqual(fs.sizeGiB!);
    expect(r.message).toMatch(new RegExp(`^${escapeRegExp(kubeletDir)} \\d+\\.\\d% used, inodes (\\d+\\.\\d%|n/a)$`));
  });

  it('reports DiskSpaceLow when a filesystem is fuller than the threshold', async () => {
    // Every real filesystem has some blocks in use, so a 0% threshold is always exceeded.
    const r = await new DiskSpaceProbe(diskSpaceConfig({ paths: [kubeletDir], usedPercent: 0, inodesUsedPercent: 100 })).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'DiskSpaceLow' });
    expect(r.message).toMatch(new RegExp(`^${escapeRegExp(kubeletDir)} \\d+\\.\\d% used, \\d+\\.\\d GiB free \\(threshold 0%\\)$`));
  });

  it('reports InodesLow when a filesystem has used more inodes than the threshold', async () => {
    const r = await new DiskSpaceProbe(diskSpaceConfig({ paths: [kubeletDir], usedPercent: 100, inodesUsedPercent: 0 })).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'InodesLow' });
    expect(r.message).toContain(`${kubeletDir} `);
    expect(r.message).toContain('of inodes used');
  });

  it('skips a path that does not exist, reports it, and still checks the others', async () => {
    const r = await new DiskSpaceProbe(diskSpaceConfig({ paths: [missingDir, kubeletDir], usedPercent: 100, inodesUsedPercent: 100 })).run(
      signal(),
    );
    expect(r).toMatchObject({ healthy: true, reason: 'DiskSpaceNormal', figures: { missing: [missingDir] } });
    expect(Object.keys(r.figures.paths as object)).toEqual([kubeletDir]);
    expect(r.message).toContain(`skipped: ${missingDir} does not exist`);
  });

  it('reports DiskSpacePathsMissing when none of the configured paths exists', async () => {
    const other = join(tree.root, 'also-missing');
    const r = await new DiskSpaceProbe(diskSpaceConfig({ paths: [missingDir, other] })).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'DiskSpacePathsMissing', figures: { paths: {}, missing: [missingDir, other] } });
    expect(r.message).toBe(
      `no filesystem checked: ${missingDir} does not exist; ${other} does not exist; ` +
        'set probes.diskSpace.paths to the kubelet and container runtime directories',
    );
  });

  it('reports a path it cannot stat with the error, without crashing', async () => {
    // A path through a regular file fails with ENOTDIR, not ENOENT.
    await tree.write({ 'a-file': 'x' });
    const throughFile = join(tree.root, 'a-file', 'sub');
    const r = await new DiskSpaceProbe(diskSpaceConfig({ paths: [throughFile] })).run(signal());
    expect(r).toMatchObject({ healthy: false, reason: 'DiskSpacePathsMissing' });
    expect((r.figures.unreadable as Figures)[throughFile]).toContain('ENOTDIR');
    expect(r.message).toContain(`${throughFile} cannot be read (ENOTDIR`);
  });
});
