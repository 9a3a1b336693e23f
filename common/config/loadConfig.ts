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
  if (options.file === '') throw new ConfigError(['--config: the path is empty; give a file, or leave the flag out to run on the defaults'], '--config');
  if (options.file !== undefined) {
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
  const overrides: Override[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name.startsWith(prefix)) overrides.push({ variable: name, path: name.slice(prefix.length).split('__'), value: parseScalar(value) });
    const alias = options.aliases?.[name];
    if (alias && value !== '') overrides.push({ variable: name, path: alias.split('.'), value });
  }
  const issues = overrides.flatMap((override) => setPath(raw as Record<string, unknown>, override));
  const withEnvironment = overrides.length ? `${source} + environment` : source;
  if (issues.length > 0) throw new ConfigError(issues, withEnvironment);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ConfigError.fromZod(parsed.error, withEnvironment, (path) => originOf(overrides, path));
  return parsed.data;
}

interface Override {
  variable: string;
  path: string[];
  value: unknown;
}

/** The variable that set `path` or a key inside it, for messages: a mistake in the pod spec is found by its name. */
function originOf(overrides: readonly Override[], path: readonly PropertyKey[]): string | undefined {
  if (path.length === 0) return undefined;
  const text = path.map(String);
  const within = (outer: readonly string[], inner: readonly string[]) => outer.length <= inner.length && outer.every((key, i) => inner[i] === key);
  return overrides.find((o) => within(text, o.path) || within(o.path, text))?.variable;
}

function parseScalar(value: string): unknown {
  try {
    return parseYaml(value);
  } catch {
    return value;
  }
}

/** Sets one override; refuses (with a message) to replace a value the file gave that is not a mapping. */
function setPath(target: Record<string, unknown>, override: Override): string[] {
  const { path, variable } = override;
  let node = target;
  for (const [depth, key] of path.slice(0, -1).entries()) {
    const next = node[key];
    if (next === undefined || next === null) node[key] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      const field = path.slice(0, depth + 1).join('.');
      return [`${field}: is ${JSON.stringify(next)}, not a mapping, so ${variable} cannot set ${path.join('.')} inside it; fix ${field} in the file`];
    }
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = override.value;
  return [];
}
