import { hostname } from 'node:os';
import { ConfigError } from './config/configError.js';

/**
 * JSON log lines in pino's shape (`level` as pino's numbers, `time`, `pid`, `hostname`, `name`,
 * the child's bindings, the call's fields, `msg` last), so log pipelines built for pino keep
 * parsing them. Written here rather than with pino because the agent's memory budget (issue 16)
 * has no room for it: pino cost the running agent ~1.6 MiB RSS for a few lines an hour.
 */

const levelNumbers = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10, silent: Infinity } as const;
export type LogLevel = keyof typeof levelNumbers;
const levels = Object.keys(levelNumbers) as LogLevel[];

type Fields = Record<string, unknown>;
type LogCall = {
  (fields: object, message?: string): void;
  (message: string): void;
};

export interface Logger {
  readonly level: LogLevel;
  fatal: LogCall;
  error: LogCall;
  warn: LogCall;
  info: LogCall;
  debug: LogCall;
  trace: LogCall;
  /** A logger whose lines also carry `bindings`. */
  child(bindings: object): Logger;
}

/** Where lines go: a stream or anything with a `write(line)` (tests collect lines this way). */
export interface LogSink {
  write(line: string): unknown;
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

const isErrorLike = (value: unknown): value is Error => typeof value === 'object' && value !== null && typeof (value as Error).message === 'string';

/** The error and its causes, first to last, each once (a cause chain can loop). */
function causeChain(err: Error): Error[] {
  const chain: Error[] = [];
  for (let at: unknown = err; isErrorLike(at) && !chain.includes(at); at = at.cause) chain.push(at);
  return chain;
}

/**
 * As pino's std `err` serializer writes an error, so alerts on its fields keep working: type,
 * the messages of the cause chain joined by ": ", the stacks joined by "caused by: ", the errors
 * of an AggregateError, and the error's own fields (code, errno, syscall, ...).
 */
function serializeError(err: Error): Fields {
  const chain = causeChain(err);
  const out: Fields = {
    type: typeof err.constructor === 'function' ? err.constructor.name : err.name,
    message: chain.map((e) => e.message).join(': '),
    stack: chain.map((e) => e.stack ?? '').join('\ncaused by: '),
  };
  const errors = (err as Error & { errors?: unknown }).errors;
  if (Array.isArray(errors)) out.aggregateErrors = errors.map((e: unknown) => (isErrorLike(e) ? serializeError(e) : e));
  for (const key of Object.keys(err)) {
    const value = (err as unknown as Fields)[key];
    if (out[key] === undefined && !(key === 'cause' && isErrorLike(value))) out[key] = value;
  }
  return out;
}

/** JSON of one line that never throws: cycles become "[Circular]", bigints strings, errors their serialization. */
function stringify(line: Fields): string {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(line, (_key, value: unknown) => {
      if (typeof value === 'bigint') return value.toString();
      if (value instanceof Error) return serializeError(value);
      if (typeof value === 'object' && value !== null) {
        if (seen.has(value)) return '[Circular]';
        seen.add(value);
      }
      return value;
    });
  } catch (err) {
    // A throwing getter or toJSON in the fields: keep the line and say why its fields are missing.
    return JSON.stringify({ level: line.level, time: line.time, pid: line.pid, hostname: line.hostname, name: line.name, msg: line.msg, logError: `fields could not be written: ${(err as Error).message}` });
  }
}

/** Sinks that already have an error listener: a closed stdout must not crash the program (and must not stop it either). */
const guarded = new WeakSet<LogSink>();

function guard(sink: LogSink): void {
  if (guarded.has(sink) || typeof sink.on !== 'function') return;
  guarded.add(sink);
  sink.on('error', () => undefined);
}

export function jsonLogger(options: { level: LogLevel; name?: string; destination?: LogSink }): Logger {
  const sink = options.destination ?? process.stdout;
  guard(sink);
  const base: Fields = { pid: process.pid, hostname: hostname(), ...(options.name === undefined ? {} : { name: options.name }) };
  return makeLogger(options.level, levelNumbers[options.level], sink, base);
}

function makeLogger(level: LogLevel, threshold: number, sink: LogSink, bindings: object): Logger {
  const call = (name: Exclude<LogLevel, 'silent'>): LogCall => {
    const number = levelNumbers[name];
    if (number < threshold) return () => undefined;
    return (first: object | string, message?: string) => {
      const fields = typeof first === 'string' ? undefined : first;
      const msg = typeof first === 'string' ? first : message;
      const time = new Date().toISOString();
      const line: Fields = { level: number, time, ...bindings, ...fields };
      // Fields named level or time keep their place in the line but not their value.
      line.level = number;
      line.time = time;
      if (msg !== undefined) line.msg = msg;
      sink.write(`${stringify(line)}\n`);
    };
  };
  return {
    level,
    fatal: call('fatal'),
    error: call('error'),
    warn: call('warn'),
    info: call('info'),
    debug: call('debug'),
    trace: call('trace'),
    child: (more) => makeLogger(level, threshold, sink, { ...bindings, ...more }),
  };
}

/**
 * JSON logs on stdout (or `destination`); LOG_LEVEL picks the level. Times are ISO 8601, as in
 * every other output of the programs (the agent's /conditions, its --once JSON, Kubernetes).
 */
export function createLogger(name: string, env: NodeJS.ProcessEnv = process.env, destination?: LogSink): Logger {
  const level = env.LOG_LEVEL ?? 'info';
  if (!(levels as string[]).includes(level)) {
    throw new ConfigError([`LOG_LEVEL: "${level}" is not a level; use one of ${levels.join(', ')}`], 'environment');
  }
  return jsonLogger({ level: level as LogLevel, name, destination });
}
