import { join } from 'node:path';
import type { Figures } from './probe.js';
import { ProcFileError, parseCount, readOptionalProcFile } from './procFiles.js';

/**
 * Pressure Stall Information (/proc/pressure/{cpu,memory,io}): the share of wall time in which
 * some (or all, `full`) runnable tasks were stalled on the resource, averaged over 10, 60 and
 * 300 seconds, plus the cumulative stall time in microseconds.
 */
export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  totalUs: number;
}

export interface Psi {
  some: PsiLine;
  /** Absent for cpu on kernels before 5.13. */
  full: PsiLine | null;
}

export type PsiResource = 'cpu' | 'memory' | 'io';

const LINE = /^(some|full)\s+(.*)$/;

function parseLine(fields: string, file: string, kind: string): PsiLine {
  const values = new Map<string, string>();
  for (const pair of fields.trim().split(/\s+/)) {
    const [key, value] = pair.split('=');
    if (key !== undefined && value !== undefined) values.set(key, value);
  }
  const field = (key: string) => parseCount(values.get(key), file, `${kind} ${key}`);
  return { avg10: field('avg10'), avg60: field('avg60'), avg300: field('avg300'), totalUs: field('total') };
}

export function parsePsi(text: string, file: string): Psi {
  let some: PsiLine | null = null;
  let full: PsiLine | null = null;
  for (const line of text.split('\n')) {
    const match = LINE.exec(line.trim());
    if (!match) continue;
    const parsed = parseLine(match[2] ?? '', file, match[1] ?? '');
    if (match[1] === 'some') some = parsed;
    else full = parsed;
  }
  if (!some) throw new ProcFileError(file, 'no "some avg10=... avg60=... avg300=... total=..." line');
  return { some, full };
}

/** The PSI of one resource, or null when the kernel has no PSI (or it is disabled with psi=0). */
export async function readPsi(procRoot: string, resource: PsiResource, signal: AbortSignal): Promise<Psi | null> {
  const file = join(procRoot, 'pressure', resource);
  const text = await readOptionalProcFile(file, signal);
  return text === null ? null : parsePsi(text, file);
}

export function psiFigures(psi: Psi): Figures {
  const line = (l: PsiLine): Figures => ({ avg10: l.avg10, avg60: l.avg60, avg300: l.avg300, totalUs: l.totalUs });
  return { some: line(psi.some), full: psi.full ? line(psi.full) : null };
}
