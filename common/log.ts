import { pino, stdTimeFunctions, type Logger } from 'pino';
import { ConfigError } from './config/configError.js';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * JSON logs on stdout (or `destination`); LOG_LEVEL picks the level. Times are ISO 8601, as in
 * every other output of the programs (the agent's /conditions, its --once JSON, Kubernetes).
 */
export function createLogger(name: string, env: NodeJS.ProcessEnv = process.env, destination?: NodeJS.WritableStream): Logger {
  const level = env.LOG_LEVEL ?? 'info';
  if (!(levels as readonly string[]).includes(level)) {
    throw new ConfigError([`LOG_LEVEL: "${level}" is not a level; use one of ${levels.join(', ')}`], 'environment');
  }
  const options = { name, level, timestamp: stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
