import type { FootprintFigures } from './footprintSampler.js';
import { ratio } from './benchOutput.js';

/** A row of the footprint table: a process, and the NPD row its ratios are taken against. */
export interface FootprintRow {
  name: string;
  /** The name of the row it is compared with; none for an NPD row itself. */
  reference?: string;
}

export const footprintHeader = ['process', 'compared with', 'steady RSS MiB', 'anon', 'file', 'peak RSS MiB', 'CPU s/h', 'RSS ratio', 'anon ratio', 'CPU ratio'] as const;

/** The table's cells: each process's figures and its ratios to its reference row ('-' for a reference itself). */
export function footprintRows(rows: readonly FootprintRow[], figures: Readonly<Record<string, FootprintFigures>>): Array<Array<string | number>> {
  const of = (name: string) => {
    const f = figures[name];
    if (!f) throw new Error(`no figures for "${name}"`);
    return f;
  };
  return rows.map((row) => {
    const f = of(row.name);
    const ref = row.reference === undefined ? undefined : of(row.reference);
    return [
      row.name,
      row.reference ?? '-',
      f.steadyRssMiB,
      f.steadyAnonMiB,
      f.steadyFileMiB,
      f.peakRssMiB,
      f.cpuSecondsPerHour,
      ref ? ratio(f.steadyRssMiB, ref.steadyRssMiB) : '-',
      ref ? ratio(f.steadyAnonMiB, ref.steadyAnonMiB) : '-',
      ref ? ratio(f.cpuSecondsPerHour, ref.cpuSecondsPerHour) : '-',
    ];
  });
}

/** A target with its measured value: met when value <= limit. */
export interface Goal {
  what: string;
  value: number;
  limit: number;
  unit: 'MiB' | 'x';
  met: boolean;
}

export function absoluteGoal(what: string, value: number, limit: number, unit: Goal['unit'] = 'MiB'): Goal {
  return { what, value, limit, unit, met: Number.isFinite(value) && value <= limit };
}

/**
 * ours / theirs at most `maxRatio`, judged on the exact ratio (shown to 3 decimals, so a
 * rounded 1.25 never hides a 1.252); a missing or zero reference is MISSED.
 */
export function ratioGoal(what: string, ours: number, theirs: number, maxRatio: number): Goal {
  const exact = theirs > 0 ? ours / theirs : Number.NaN;
  return { ...absoluteGoal(what, exact, maxRatio, 'x'), value: Number(exact.toFixed(3)) };
}

export function goalLine(goal: Goal): string {
  const value = goal.unit === 'x' ? `${goal.value}x` : `${goal.value} MiB`;
  const limit = goal.unit === 'x' ? `${goal.limit}x` : `${goal.limit} MiB`;
  return `${goal.what}: ${value} <= ${limit}: ${goal.met ? 'met' : 'MISSED'}`;
}
