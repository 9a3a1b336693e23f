import { readFile, readdir } from 'node:fs/promises';
import { engineReasons } from '../../common/contract.js';
import type { Verdict } from './probe.js';

/**
 * Reading and parsing the small text files of /proc and /sys. Every failure becomes a
 * ProcFileError that names the file, so a probe can report it instead of crashing.
 */
export class ProcFileError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'ProcFileError';
  }
}

/** Where the probes find the kernel's files; tests point these at fixture trees. */
export interface NodeRoots {
  procRoot: string;
  sysRoot: string;
}

/** The verdict of a sample whose source file could not be read or understood. */
export function readErrorVerdict(err: ProcFileError): Verdict {
  return {
    healthy: false,
    reason: engineReasons.probeReadError,
    message: `cannot use ${err.file}: ${err.detail}; the agent cannot see this node's state (check procRoot, sysRoot and the host mounts)`,
  };
}

/** Errors that mean "this kernel does not offer the file" rather than "something is broken". */
const ABSENT_CODES = new Set(['ENOENT', 'ENOTDIR', 'EOPNOTSUPP']);

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

export async function readProcFile(file: string, signal: AbortSignal): Promise<string> {
  try {
    return await readFile(file, { encoding: 'utf8', signal });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ProcFileError(file, (err as Error).message);
  }
}

/** Like readProcFile, but null when the file does not exist (or, for PSI, is disabled). */
export async function readOptionalProcFile(file: string, signal: AbortSignal): Promise<string | null> {
  try {
    return await readFile(file, { encoding: 'utf8', signal });
  } catch (err) {
    if (isAbort(err)) throw err;
    if (ABSENT_CODES.has((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw new ProcFileError(file, (err as Error).message);
  }
}

/** The entries of a directory, or null when it does not exist (e.g. no /sys in a container). */
export async function readOptionalDir(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (ABSENT_CODES.has((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw new ProcFileError(dir, (err as Error).message);
  }
}

/** A finite, non-negative number, or a ProcFileError naming the field that was not one. */
export function parseCount(text: string | undefined, file: string, field: string): number {
  const value = text === undefined || text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new ProcFileError(file, `${field} is ${text === undefined ? 'missing' : JSON.stringify(text)}, expected a non-negative number`);
  }
  return value;
}

export interface LoadAvg {
  load1: number;
  load5: number;
  load15: number;
  /** Runnable scheduling entities (threads) right now. */
  running: number;
  /** All scheduling entities (threads) that exist right now. */
  tasks: number;
}

/** /proc/loadavg: `3.66 1.61 0.61 5/103 9007`. */
export function parseLoadAvg(text: string, file: string): LoadAvg {
  const [load1, load5, load15, entities] = text.trim().split(/\s+/);
  const [running, tasks] = (entities ?? '').split('/');
  return {
    load1: parseCount(load1, file, 'load1'),
    load5: parseCount(load5, file, 'load5'),
    load15: parseCount(load15, file, 'load15'),
    running: parseCount(running, file, 'running tasks (4th field, before the slash)'),
    tasks: parseCount(tasks, file, 'total tasks (4th field, after the slash)'),
  };
}
