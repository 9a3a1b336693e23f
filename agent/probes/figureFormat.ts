/** Rounding and wording of measured figures, so every probe reports them alike. */

/** Rates and percentages carry no meaning beyond two decimals; rounding keeps output readable. */
export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** `42.1%` */
export function formatPercent(value: number): string {
  return `${value.toFixed(1)}%`;
}

/** The share of `whole` that `part` is, in percent; 0 when there is no whole to share. */
export function percentOf(part: number, whole: number): number {
  return whole > 0 ? (part / whole) * 100 : 0;
}
