import type { z } from 'zod';

/** A config problem a person can fix: names the field, says what was wrong and what to do. */
export class ConfigError extends Error {
  constructor(
    readonly issues: string[],
    readonly source: string,
  ) {
    super(`invalid configuration (${source}):\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }

  /** `originOf` names where a field's value came from (an environment variable), when known. */
  static fromZod(error: z.ZodError, source: string, originOf: (path: PropertyKey[]) => string | undefined = () => undefined): ConfigError {
    return new ConfigError(
      error.issues.map((issue) => {
        const field = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
        const fix =
          issue.code === 'unrecognized_keys'
            ? `; remove it or check its spelling (keys: ${issue.keys.join(', ')})`
            : '';
        const origins =
          issue.code === 'unrecognized_keys' ? issue.keys.map((key) => originOf([...issue.path, key])) : [originOf(issue.path)];
        const from = [...new Set(origins.filter((o) => o !== undefined))];
        return `${field}: ${issue.message}${fix}${from.length > 0 ? ` (set by ${from.join(', ')})` : ''}`;
      }),
      source,
    );
  }
}
