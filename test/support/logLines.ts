import { jsonLogger, type Logger, type LogLevel } from '../../common/log.js';

/** A logger whose JSON lines are kept, parsed, for a test to read. */
export function logLines(level: LogLevel = 'debug'): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
  return { log: jsonLogger({ level, destination }), lines };
}
