import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { floodGrowth, lostTotalFromAgentLog, metricValue, phaseFigures, type UsageSample } from '../../bench/support/floodFigures.js';
import { nonceRuleFile } from '../../bench/support/kernelLog.js';
import { LogMatcher } from '../../agent/monitors/logMatcher.js';
import { readRuleFile } from '../../agent/monitors/ruleFile.js';

const MiB = 1024;
const at = (second: number, rssMiB: number, cpuSeconds = 0): UsageSample => ({ at: second, rssKiB: rssMiB * MiB, anonKiB: (rssMiB / 2) * MiB, cpuSeconds });

describe('kmsg flood benchmark figures', () => {
  it('gives a phase its median RSS, its highest sample and its CPU in cores over the phase’s own wall time', () => {
    const samples = [at(0, 50, 0), at(1, 52, 0.5), at(2, 70, 1), at(3, 54, 1.5), at(9, 80, 10)];
    expect(phaseFigures(samples, 0, 4)).toEqual({ samples: 4, rssMiB: 53, anonMiB: 26.5, peakRssMiB: 70, cores: 0.5 });
    expect(() => phaseFigures(samples, 4, 8)).toThrow(/no samples between 4 and 8 s/);
  });

  it('calls an agent that levels off during the flood bounded, and one that keeps growing with volume GROWING', () => {
    const levelled = Array.from({ length: 60 }, (_, i) => at(i, i < 10 ? 50 + i : 60));
    expect(floodGrowth(levelled, 0, 60, 2)).toMatchObject({ growthMiB: 0, bounded: true });
    const growing = Array.from({ length: 60 }, (_, i) => at(i, 50 + i * 0.5));
    expect(floodGrowth(growing, 0, 60, 2)).toMatchObject({ middleMiB: 64.8, endMiB: 74.8, bounded: false });
  });

  it('reads the agent’s total of lost records from its highest lostTotal, whatever order the reports came in', () => {
    const log = [
      '{"level":40,"lost":100,"lostTotal":100,"msg":"kernel log records were overwritten before the agent read them"}',
      '{"level":30,"msg":"nodepulse agent running"}',
      '{"level":40,"lost":900,"lostTotal":1000,"msg":"kernel log records were overwritten before the agent read them"}',
      '{"level":40,"lostTotal":20',
    ].join('\n');
    expect(lostTotalFromAgentLog(log)).toBe(1000);
    expect(lostTotalFromAgentLog('{"level":30,"msg":"nothing lost"}')).toBe(0);
  });

  it('reads a counter from Prometheus text by its labels, not by a name that only starts the same', () => {
    const text = [
      '# HELP nodepulse_probe_failures_total Samples that found a problem',
      'nodepulse_probe_failures_total{probe="kernel",reason="BenchFloodMatch"} 29',
      'nodepulse_probe_failures_total{probe="kernel",reason="BenchFloodEnd"} 1',
      'nodepulse_probe_failures_total{probe="dns",reason="BenchFloodMatch"} 5',
      'nodepulse_probe_failures_total_extra{probe="kernel",reason="BenchFloodMatch"} 7',
    ].join('\n');
    expect(metricValue(text, 'nodepulse_probe_failures_total', { probe: 'kernel', reason: 'BenchFloodMatch' })).toBe(29);
    expect(metricValue(text, 'nodepulse_probe_failures_total', { reason: 'BenchFloodMatch' })).toBe(34);
    expect(metricValue(text, 'nodepulse_probe_failures_total', { probe: 'kernel', reason: 'Other' })).toBe(0);
  });
});

describe('benchmark rule files with a nonce', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodepulse-bench-rules-'));

  it('are NPD rule files the agent reads as they are, matching only this run’s lines', () => {
    const file = nonceRuleFile(dir, {
      nonce: '0a1b2c3d',
      source: 'bench-test',
      condition: { type: 'BenchKernelLogProblem', healthyReason: 'NoBenchKernelLogLine', reason: 'BenchKernelLogLine', word: 'fault', clearAfterSeconds: 2 },
      temporary: [{ reason: 'BenchFloodMatch', word: 'match' }],
    });
    const set = readRuleFile(file.path);
    expect(set.rules.find((r) => r.type === 'permanent')?.clearAfterSeconds).toBe(2);
    const matcher = new LogMatcher(set);
    const reasons = (line: string) => matcher.push(line).map((m) => m.rule.reason);
    expect(reasons('nodepulse-bench 0a1b2c3d fault 3')).toEqual(['BenchKernelLogLine']);
    expect(reasons('nodepulse-bench 0a1b2c3d match 2000')).toEqual(['BenchFloodMatch']);
    expect(reasons('nodepulse-bench 0a1b2c3d flood 2001 lorem ipsum dolor sit amet')).toEqual([]);
    expect(reasons('nodepulse-bench ffffffff fault 3')).toEqual([]);
  });

  it('refuse a nonce that is not hex, which could carry regular-expression syntax into the patterns', () => {
    expect(() => nonceRuleFile(dir, { nonce: 'a.*', source: 'x' })).toThrow(/6-32 lowercase hex digits/);
  });
});
