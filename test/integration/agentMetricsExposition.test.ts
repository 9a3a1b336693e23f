import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProblemEvent } from '../../agent/conditions/conditionEngine.js';
import { AgentMetrics } from '../../agent/metrics/agentMetrics.js';
import { Counter, Gauge, Histogram, MetricsRegistry } from '../../agent/metrics/promText.js';
import { COLD_BUILD_TIMEOUT_MS, monitoringTool, runTool } from '../support/monitoringTools.js';

/**
 * The agent's own Prometheus text writer (agent/metrics/promText.ts, in place of prom-client for
 * the memory budget) through Prometheus's own parser and linter: `promtool check metrics`.
 */
let promtool: string;
beforeAll(async () => {
  promtool = await monitoringTool('promtool');
}, COLD_BUILD_TIMEOUT_MS);

/** NPD's metric names, kept on purpose so NPD's dashboards work; promtool's naming lint flags them. */
const npdNameLint = [
  'problem_counter counter metrics should have "_total" suffix',
  "problem_counter metric name should not include type 'counter'",
  "problem_gauge metric name should not include type 'gauge'",
];

const metrics = new AgentMetrics();
afterAll(() => metrics.stop());

describe("the agent's /metrics text, read by Prometheus's own parser (promtool check metrics)", () => {
  it('parses, and lints clean but for the NPD names kept on purpose: label values with quotes, backslashes and line feeds, histograms, a removed series', async () => {
    metrics.recordResult({ probe: 'dns', healthy: false, reason: 'Odd "reason" \\ with\na line feed', durationMs: 12, at: 0, message: '', figures: {} });
    metrics.recordResult({ probe: 'dns', healthy: true, reason: 'DNSHealthy', durationMs: 2500, at: 0, message: '', figures: {} });
    const oom: ProblemEvent = { kind: 'temporary', severity: 'Warning', reason: 'OOMKilling', message: 'Killed process 4242 (java)', at: 0 };
    metrics.recordCondition({ type: 'DNSProblem', status: 'True', reason: 'ClusterDNSTimeout', message: '', lastTransitionTime: 0 }, [oom]);
    metrics.recordCondition({ type: 'DNSProblem', status: 'False', reason: 'DNSHealthy', message: '', lastTransitionTime: 0 }, []);
    const text = metrics.text();
    const result = await runTool(promtool, ['check', 'metrics'], { input: text });
    expect(result.stderr.trim().split('\n').sort(), text).toEqual([...npdNameLint].sort());
    // The old reason's series is gone, the new one is there.
    expect(text).not.toContain('problem_gauge{type="DNSProblem",reason="ClusterDNSTimeout"}');
    expect(text).toContain('problem_gauge{type="DNSProblem",reason="DNSHealthy"} 0');
    expect(text).toContain('nodepulse_probe_failures_total{probe="dns",reason="Odd \\"reason\\" \\\\ with\\na line feed"} 1');
    expect(text).toContain('nodepulse_probe_duration_seconds_bucket{probe="dns",le="2"} 1');
    expect(text).toContain('nodepulse_probe_duration_seconds_bucket{probe="dns",le="5"} 2');
    expect(text).toContain('nodepulse_probe_duration_seconds_count{probe="dns"} 2');
    // The process series the dashboard reads.
    expect(text).toMatch(/^nodepulse_process_resident_memory_bytes \d+$/m);
    expect(text).toMatch(/^nodepulse_process_cpu_seconds_total [\d.e-]+$/m);
  });

  it('a malformed line is what promtool refuses (the check can fail)', async () => {
    const result = await runTool(promtool, ['check', 'metrics'], { input: '# TYPE x counter\nx{a="unterminated} 1\n' });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/error while linting|parse|unexpected/i);
  });

  it('refuses names and labels Prometheus would refuse, and a counter going down', () => {
    const registry = new MetricsRegistry();
    expect(() => new Counter('1bad', 'x')).toThrow(/not a Prometheus metric name/);
    expect(() => new Gauge('ok', 'x', ['__reserved'])).toThrow(/cannot be a label name/);
    expect(() => new Histogram('h', 'x', ['le'], [1])).toThrow(/cannot be a label name/);
    expect(() => new Histogram('h', 'x', [], [2, 1])).toThrow(/increasing/);
    const c = registry.register(new Counter('c_total', 'x', ['a']));
    expect(() => c.inc({ a: '1' }, -1)).toThrow(/only goes up/);
    expect(() => c.inc({})).toThrow(/label a is missing/);
  });
});
