import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './configError.js';

/**
 * Reads a YAML or JSON file (or none), applies environment overrides, and validates the
 * result against `schema`. Overrides use a path in the variable name:
 * `NODEPULSE__probes__cpu__enabled=false` sets probes.cpu.enabled; values are YAML scalars.
 * `aliases` maps friendly variables (NODE_NAME) onto paths.
 */
export function loadConfig<S extends z.ZodType>(
  schema: S,
  options: { file?: string; env?: NodeJS.ProcessEnv; aliases?: Record<string, string>; prefix?: string },
): z.output<S> {
  const env = options.env ?? process.env;
  const prefix = options.prefix ?? 'NODEPULSE__';
  let raw: unknown = {};
  const source = options.file ?? 'built-in defaults';
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError([`cannot read ${options.file}: ${(err as Error).message}; fix the --config path`], source);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError([`not valid YAML or JSON: ${(err as Error).message}`], source);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(['(top level): must be a mapping of keys to values'], source);
    }
  }
  // Aliases name string fields (NODE_NAME=1234 stays a string); path overrides are YAML scalars.
  const overrides: Array<[string[], unknown]> = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name.startsWith(prefix)) overrides.push([name.slice(prefix.length).split('__'), parseScalar(value)]);
    const alias = options.aliases?.[name];
    if (alias && value !== '') overrides.push([alias.split('.'), value]);
  }
  for (const [path, value] of overrides) setPath(raw as Record<string, unknown>, path, value);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ConfigError.fromZod(parsed.error, overrides.length ? `${source} + environment` : source);
  return parsed.data;
}

function parseScalar(value: string): unknown {
  try {
    return parseYaml(value);
  } catch {
    return value;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}
