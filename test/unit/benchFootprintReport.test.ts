import { describe, expect, it } from 'vitest';
import { absoluteGoal, footprintRows, goalLine, ratioGoal } from '../../bench/support/footprintReport.js';
import type { FootprintFigures } from '../../bench/support/footprintSampler.js';

function figures(rss: number, anon: number, cpu: number): FootprintFigures {
  return {
    samples: 10,
    steadyRssMiB: rss,
    steadyAnonMiB: anon,
    steadyFileMiB: rss - anon,
    peakRssMiB: rss + 1,
    peakTreeRssMiB: rss + 1,
    cpuSecondsPerHour: cpu,
    warmupCpuSeconds: 0,
    totalCpuSeconds: 0,
    rssSeries: [],
  };
}

describe('footprint table against node-problem-detector', () => {
  const all = { 'NPD as shipped': figures(44.4, 9, 2), agent: figures(55.5, 13.5, 1), 'NPD doing its work': figures(40, 10, 8), standalone: figures(60, 18, 2) };

  it('takes each agent row’s RSS, anon and CPU ratios against the NPD row it names, not the first one', () => {
    const rows = footprintRows(
      [{ name: 'NPD as shipped' }, { name: 'agent', reference: 'NPD as shipped' }, { name: 'NPD doing its work' }, { name: 'standalone', reference: 'NPD doing its work' }],
      all,
    );
    expect(rows[0]).toEqual(['NPD as shipped', '-', 44.4, 9, 35.4, 45.4, 2, '-', '-', '-']);
    expect(rows[1]?.slice(7)).toEqual([1.25, 1.5, 0.5]);
    expect(rows[3]?.slice(7)).toEqual([1.5, 1.8, 0.25]);
  });

  it('refuses a row whose figures are missing instead of printing a blank ratio', () => {
    expect(() => footprintRows([{ name: 'agent', reference: 'NPD gone' }], all)).toThrow(/no figures for "NPD gone"/);
  });

  it('says met at exactly the ratio goal and MISSED just above it, even where two decimals would round it down to the goal', () => {
    expect(goalLine(ratioGoal('RSS / NPD', 55.5, 44.4, 1.25))).toBe('RSS / NPD: 1.25x <= 1.25x: met');
    expect(goalLine(ratioGoal('RSS / NPD', 55.6, 44.4, 1.25))).toBe('RSS / NPD: 1.252x <= 1.25x: MISSED');
    expect(goalLine(ratioGoal('anon / NPD', 18.4, 9, 1.5))).toBe('anon / NPD: 2.044x <= 1.5x: MISSED');
  });

  it('counts a goal against a reference with no figure (zero CPU, say) as MISSED, not met', () => {
    expect(ratioGoal('CPU / NPD', 1, 0, 0.5).met).toBe(false);
    expect(absoluteGoal('RSS', Number.NaN, 64).met).toBe(false);
  });

  it('judges the in-cluster budget in MiB', () => {
    expect(goalLine(absoluteGoal('in-cluster steady RSS', 63.4, 64))).toBe('in-cluster steady RSS: 63.4 MiB <= 64 MiB: met');
  });
});
