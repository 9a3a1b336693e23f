import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { agentConfigSchema } from '../../agent/config/schema.js';
import { controllerConfigSchema } from '../../controller/config/controllerConfig.js';

/**
 * The chart's values.schema.json checks `agent.config` and `controller.config` with JSON Schemas
 * generated from the programs' own zod schemas, so `helm install` refuses a misspelt or
 * out-of-range key with its path before any pod starts. This test keeps them generated: a change
 * to either zod schema fails it until the file is regenerated with
 *   UPDATE_CHART_SCHEMA=1 npx vitest run --project unit test/unit/chartValuesSchema.test.ts
 */
const schemaFile = fileURLToPath(new URL('../../charts/nodepulse/values.schema.json', import.meta.url));

interface ValuesSchema {
  properties: Record<'agent' | 'controller', { properties: { config: unknown } }>;
}

/** What a values file may hold for one program: the input side of its config (every key optional, unknown keys refused). */
function configJsonSchema(schema: z.ZodType): unknown {
  // Cross-field rules (a timeout below its interval) and refinements (IP literals) have no JSON
  // Schema form: the loaders still check them when the pod starts (test/integration/helmChart.test.ts).
  const { $schema: _, ...generated } = z.toJSONSchema(schema, { io: 'input', target: 'draft-7', unrepresentable: 'any' });
  return generated;
}

const generated = {
  agent: configJsonSchema(agentConfigSchema),
  controller: configJsonSchema(controllerConfigSchema),
};

describe("the chart's values schema", () => {
  it("checks agent.config and controller.config against the programs' own config schemas", () => {
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as ValuesSchema;
    if (process.env.UPDATE_CHART_SCHEMA === '1') {
      schema.properties.agent.properties.config = generated.agent;
      schema.properties.controller.properties.config = generated.controller;
      writeFileSync(schemaFile, `${JSON.stringify(schema, null, 2)}\n`);
    }
    const hint = 'regenerate: UPDATE_CHART_SCHEMA=1 npx vitest run --project unit test/unit/chartValuesSchema.test.ts';
    expect(schema.properties.agent.properties.config, hint).toEqual(generated.agent);
    expect(schema.properties.controller.properties.config, hint).toEqual(generated.controller);
  });

  it('refuses unknown keys at every level of both configs, so a typo is named rather than ignored', () => {
    const strictEverywhere = (node: unknown, path: string): string[] => {
      if (typeof node !== 'object' || node === null) return [];
      const record = node as Record<string, unknown>;
      const here = record.type === 'object' && record.properties !== undefined && record.additionalProperties !== false ? [path] : [];
      return [
        ...here,
        ...Object.entries(record).flatMap(([key, value]) => (Array.isArray(value) ? value.map((v, i) => strictEverywhere(v, `${path}.${key}[${i}]`)).flat() : strictEverywhere(value, `${path}.${key}`))),
      ];
    };
    expect(strictEverywhere(generated.agent, 'agent.config')).toEqual([]);
    expect(strictEverywhere(generated.controller, 'controller.config')).toEqual([]);
  });
});
