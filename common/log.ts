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
  const seen = new Set<unknown>();
  for (let at: unknown = err; isErrorLike(at) && !seen.has(at); at = at.cause) {
    seen.add(at);
    chain.push(at);
  }
  return chain;
}

/** Objects nested deeper than this are written as "[Object]" / "[Array]": a log line stays a line. */
const MAX_DEPTH = 10;

const unwritable = (err: unknown) => `[unable to serialize: ${err instanceof Error ? err.message : String(err)}]`;

/**
 * A value JSON.stringify writes without throwing: a field that cannot be read or written (a
 * throwing getter or toJSON) becomes "[unable to serialize: ...]" and costs only itself; an
 * object inside itself "[Circular]" (an object met twice side by side is written twice, as
 * pino does); bigints strings; errors as pino's `err` serializer writes them.
 */
function plain(value: unknown, ancestors: Set<object>, depth: number): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object' || value === null) return value;
  if (ancestors.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? '[Array]' : '[Object]';
  ancestors.add(value);
  try {
    if (value instanceof Error) return plain(errorFields(value), ancestors, depth);
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return plain(toJSON.call(value), ancestors, depth + 1);
    if (Array.isArray(value)) return value.map((item) => field(() => item, ancestors, depth + 1));
    return keyedFields(value, ancestors, depth + 1);
  } finally {
    ancestors.delete(value);
  }
}

function field(read: () => unknown, ancestors: Set<object>, depth: number): unknown {
  try {
    return plain(read(), ancestors, depth);
  } catch (err) {
    return unwritable(err);
  }
}

/**
 * As pino's std `err` serializer writes an error, so alerts on its fields keep working: type,
 * the messages of the cause chain joined by ": ", the stacks joined by "caused by: ", the errors
 * of an AggregateError, and the error's enumerable properties, inherited ones too (code, errno,
 * syscall; a DOMException's name and code).
 */
function errorFields(err: Error): Fields {
  const chain = causeChain(err);
  const out: Fields = {
    type: typeof err.constructor === 'function' ? err.constructor.name : err.name,
    message: chain.map((e) => e.message).join(': '),
    stack: chain.map((e) => e.stack ?? '').join('\ncaused by: '),
  };
  const errors = (err as Error & { errors?: unknown }).errors;
  if (Array.isArray(errors)) out.aggregateErrors = errors;
  for (const key in err) {
    if (out[key] !== undefined) continue;
    const value = (err as unknown as Fields)[key];
    if (!(key === 'cause' && isErrorLike(value))) out[key] = value;
  }
  return out;
}

/** An object's own fields, each read on its own so one bad getter costs only itself. */
function keyedFields(value: object, ancestors: Set<object>, depth: number): Fields {
  const out: Fields = {};
  for (const key of Object.keys(value)) out[key] = field(() => (value as Fields)[key], ancestors, depth);
  return out;
}

/** A call's fields (or a child's bindings); an object whose keys cannot even be listed leaves a note instead. */
function ownFields(fields: object): Fields {
  try {
    return keyedFields(fields, new Set(), 1);
  } catch (err) {
    return { logError: `fields could not be read: ${unwritable(err)}` };
  }
}

/** The message of the call's `err`, if it has one (pino's msg for a line without its own). */
function errorMessage(source: object): string | undefined {
  try {
    const err = (source as { err?: unknown }).err;
    return isErrorLike(err) ? err.message : undefined;
  } catch {
    return undefined;
  }
}

/** Sinks that already have an error listener: a broken stdout must neither crash nor stop the program. */
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

function makeLogger(level: LogLevel, threshold: number, sink: LogSink, bindings: Fields): Logger {
  const call = (name: Exclude<LogLevel, 'silent'>): LogCall => {
    const number = levelNumbers[name];
    if (number < threshold) return () => undefined;
    return (first: object | string, message?: string) => {
      // As pino: log.error(err) logs it under err, and a line without a message takes the error's.
      const source = typeof first === 'string' ? {} : first instanceof Error ? { err: first } : first;
      const fields = ownFields(source);
      const msg = typeof first === 'string' ? first : (message ?? errorMessage(source));
      const time = new Date().toISOString();
      const line: Fields = { level: number, time, ...bindings, ...fields };
      // Fields named level or time keep their place in the line but not their value.
      line.level = number;
      line.time = time;
      if (msg !== undefined) line.msg = msg;
      try {
        sink.write(`${JSON.stringify(line)}\n`);
      } catch {
        // A sink that throws loses the line, not the caller's work.
      }
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
    child: (more) => makeLogger(level, threshold, sink, { ...bindings, ...ownFields(more) }),
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
