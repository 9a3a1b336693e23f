import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { COLD_BUILD_TIMEOUT_MS, monitoringTool, runTool } from '../support/monitoringTools.js';

const monitoring = fileURLToPath(new URL('../../manifests/monitoring', import.meta.url));
const rulesFile = join(monitoring, 'nodepulse.rules.yaml');
const rulesTests = join(monitoring, 'tests', 'nodepulse.rules.test.yaml');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
}
interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}
interface RulesTestFile {
  tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

const shipped = parse(readFileSync(rulesFile, 'utf8')) as RuleFile;
const alerts = shipped.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined);

const work = mkdtempSync(join(tmpdir(), 'nodepulse-rules-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let promtool: string;
beforeAll(async () => {
  promtool = await monitoringTool('promtool');
}, COLD_BUILD_TIMEOUT_MS);

/** Runs the shipped promtool tests against `rules` in place of the shipped rules. */
async function testRulesAgainst(rules: RuleFile, name: string) {
  const dir = join(work, name);
  mkdirSync(join(dir, 'tests'), { recursive: true });
  writeFileSync(join(dir, 'nodepulse.rules.yaml'), stringify(rules));
  cpSync(rulesTests, join(dir, 'tests', 'nodepulse.rules.test.yaml'));
  return runTool(promtool, ['test', 'rules', join(dir, 'tests', 'nodepulse.rules.test.yaml')]);
}

/** The shipped rules with one alert changed by `change`. */
function withAlert(name: string, change: (rule: Rule) => void): RuleFile {
  const copy = structuredClone(shipped);
  const rule = copy.groups.flatMap((g) => g.rules).find((r) => r.alert === name);
  if (!rule) throw new Error(`no alert ${name}`);
  change(rule);
  return copy;
}

describe('the shipped Prometheus alert rules', () => {
  it('pass promtool check rules', async () => {
    const result = await runTool(promtool, ['check', 'rules', rulesFile]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('pass their promtool unit tests', async () => {
    const result = await runTool(promtool, ['test', 'rules', rulesTests]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it('have, for every alert, a unit test where it fires and one where it must not', () => {
    const cases = (parse(readFileSync(rulesTests, 'utf8')) as RulesTestFile).tests.flatMap((t) => t.alert_rule_test ?? []);
    const missing = alerts.flatMap(({ alert }) => {
      const own = cases.filter((c) => c.alertname === alert);
      return [
        ...(own.some((c) => (c.exp_alerts ?? []).length > 0) ? [] : [`${alert}: no case where it fires`]),
        ...(own.some((c) => (c.exp_alerts ?? []).length === 0) ? [] : [`${alert}: no case where it must not fire`]),
      ];
    });
    expect(missing).toEqual([]);
  });

  it.each(alerts.map((a) => a.alert))('are tested closely enough that %s never firing fails the unit tests', async (name) => {
    const result = await testRulesAgainst(withAlert(name, (rule) => (rule.expr = 'absent(vector(1))')), `never-${name}`);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain(`alertname: ${name},`);
  });

  it.each(alerts.filter((a) => a.for !== undefined).map((a) => a.alert))('are tested closely enough that %s firing before its duration fails the unit tests', async (name) => {
    const result = await testRulesAgainst(
      withAlert(name, (rule) => delete rule.for),
      `early-${name}`,
    );
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain(`alertname: ${name},`);
  });

  it('are shipped as a PrometheusRule for prometheus-operator with exactly the same groups', () => {
    const object = parse(readFileSync(join(monitoring, 'prometheusrule.yaml'), 'utf8')) as { apiVersion: string; kind: string; spec: RuleFile };
    expect(object.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(object.kind).toBe('PrometheusRule');
    expect(object.spec).toEqual(shipped);
  });
});
