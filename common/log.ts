import { pino, type Logger } from 'pino';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** JSON logs on stdout (or `destination`); LOG_LEVEL picks the level. */
export function createLogger(name: string, env: NodeJS.ProcessEnv = process.env, destination?: NodeJS.WritableStream): Logger {
  const level = env.LOG_LEVEL ?? 'info';
  if (!(levels as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL: "${level}" is not a level; use one of ${levels.join(', ')}`);
  }
  return destination ? pino({ name, level }, destination) : pino({ name, level });
}
