import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcFileError, readProcFile } from '../probes/procFiles.js';

/** One line of /proc/<pid>/mountinfo, the fields the read-only check needs. */
export interface MountEntry {
  /** major:minor of the filesystem's device. */
  device: string;
  mountPoint: string;
  source: string;
  /** Superblock options: `ro` here is the filesystem itself read-only (what a kernel remount after errors sets). */
  readOnly: boolean;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (text: string) => text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    const superOptions = (fields[dash + 3] as string).split(',');
    entries.push({ device: fields[2] as string, mountPoint: unescape(fields[4] as string), source: unescape(fields[dash + 2] as string), readOnly: superOptions.includes('ro') });
  }
  return entries;
}

/** The block device a kernel line names, e.g. `EXT4-fs (sda1): Remounting filesystem read-only` -> sda1. */
export function deviceInLine(line: string): string | undefined {
  return /\(([A-Za-z0-9_.:-]+)\):/.exec(line)?.[1];
}

export interface MountVerdict {
  /** Every affected mount is read-write again. */
  readWrite: boolean;
  /** The mounts looked at, for the message: `/ (8:1, /dev/sda1) rw`. */
  checked: string[];
}

/**
 * Whether the filesystem a read-only line is about is writable again, by evidence: the
 * superblock options in the host's mountinfo (a read-only bind mount of it in our own pod
 * says nothing about the filesystem, the superblock does). The device comes from the line
 * (through sysfs to major:minor); without one, or when it is not mounted, `paths` are checked.
 */
export async function readWriteAgain(line: string, roots: { procRoot: string; sysRoot: string }, paths: readonly string[], signal: AbortSignal): Promise<MountVerdict> {
  const mountInfo = join(roots.procRoot, 'self/mountinfo');
  const mounts = parseMountInfo(await readProcFile(mountInfo, signal));
  let affected: MountEntry[] = [];
  const device = deviceInLine(line);
  if (device) {
    const number = await readFile(join(roots.sysRoot, 'class/block', device, 'dev'), { encoding: 'utf8', signal }).then(
      (text) => text.trim(),
      () => undefined,
    );
    if (number) affected = mounts.filter((m) => m.device === number);
  }
  if (affected.length === 0) affected = [...new Set(paths.map((path) => mountOf(path, mounts)).filter((m): m is MountEntry => m !== undefined))];
  if (affected.length === 0) throw new ProcFileError(mountInfo, `no mount found for ${device ? `device ${device} or ` : ''}the paths ${paths.join(', ')}`);
  return {
    readWrite: affected.every((m) => !m.readOnly),
    checked: affected.map((m) => `${m.mountPoint} (${m.device}, ${m.source}) ${m.readOnly ? 'ro' : 'rw'}`),
  };
}

/** The mount a path lives on: the longest mount point that contains it (the last one mounted wins). */
function mountOf(path: string, mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
