import { Writable } from 'node:stream';
import { pino, stdTimeFunctions } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../common/config/configError.js';
import { createLogger, jsonLogger, type Logger } from '../../common/log.js';

type Line = Record<string, unknown>;

function collect(): { destination: { write(line: string): void }; lines: Line[]; raw: string[] } {
  const lines: Line[] = [];
  const raw: string[] = [];
  return { destination: { write: (line) => void (raw.push(line), lines.push(JSON.parse(line) as Line)) }, lines, raw };
}

/** The calls the programs make: message only, fields and message, an error with a code and a cause, a child's bindings. */
const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443', { cause: new TypeError('socket closed') }), { code: 'ECONNREFUSED', errno: -111 });
const both = new AggregateError([new Error('a'), new RangeError('b')], 'two failed');

function logEverything(log: Logger): void {
  log.info('nodepulse agent running');
  log.warn({ err: refused, retryInMs: 400 }, 'publishing to the API server failed; backing off');
  log.error({ err: both }, 'both failed');
  log.child({ monitor: 'kernel' }).info({ lost: 3, nested: { list: [1, 'two', null], flag: true } }, 'kernel log records were overwritten');
  log.debug({ node: 'aks-1' }, 'reconciled');
  log.trace({ node: 'aks-1' }, 'below the level');
}

describe('the JSON logger', () => {
  it('writes what pino writes, key for key and in the same order, so log pipelines built for pino keep parsing the lines', () => {
    const ours = collect();
    const theirs = collect();
    logEverything(jsonLogger({ name: 'nodepulse-agent', level: 'debug', destination: ours.destination }));
    logEverything(pino({ name: 'nodepulse-agent', level: 'debug', timestamp: stdTimeFunctions.isoTime }, theirs.destination) as unknown as Logger);
    const withoutTime = (lines: Line[]) => lines.map(({ time, ...rest }) => (expect(String(time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), rest));
    expect(ours.lines).toHaveLength(5);
    expect(withoutTime(ours.lines)).toEqual(withoutTime(theirs.lines));
    expect(ours.lines.map((l) => Object.keys(l))).toEqual(theirs.lines.map((l) => Object.keys(l)));
    expect(ours.raw.every((line) => line.endsWith('}\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    expect(ours.lines[1]).toMatchObject({ level: 40, err: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:6443: socket closed', code: 'ECONNREFUSED' } });
  });

  it('drops lines below its level, and a silent logger writes nothing', () => {
    const warn = collect();
    logEverything(jsonLogger({ level: 'warn', destination: warn.destination }));
    expect(warn.lines.map((l) => l.level)).toEqual([40, 50]);
    const silent = collect();
    logEverything(jsonLogger({ level: 'silent', destination: silent.destination }));
    expect(silent.lines).toEqual([]);
  });

  it('a field that cannot be written as JSON (a cycle, a bigint, a throwing getter) costs the fields, never the line or the program', () => {
    const { destination, lines } = collect();
    const log = jsonLogger({ level: 'info', destination });
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    log.info({ loop, count: 12n }, 'odd fields');
    log.info({ broken: { toJSON: () => { throw new Error('no JSON for you'); } } }, 'a throwing field');
    expect(lines[0]).toMatchObject({ loop: { name: 'loop', self: '[Circular]' }, count: '12', msg: 'odd fields' });
    expect(lines[1]).toMatchObject({ level: 30, msg: 'a throwing field', logError: 'fields could not be written: no JSON for you' });
  });

  it('fields named level or time do not change the line\'s level or time', () => {
    const { destination, lines } = collect();
    jsonLogger({ level: 'info', destination }).warn({ level: 'debug', time: 'yesterday' }, 'spoofed');
    expect(lines[0]?.level).toBe(40);
    expect(lines[0]?.time).not.toBe('yesterday');
    expect(Object.keys(lines[0] ?? {}).slice(0, 2)).toEqual(['level', 'time']);
  });

  it('a log stream that breaks (EPIPE: the reader of stdout went away) does not crash the program, and later lines are dropped quietly', async () => {
    const broken = new Writable({ write: (_chunk, _encoding, done) => done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
    const log = jsonLogger({ level: 'info', destination: broken });
    log.info('first');
    await new Promise((resolve) => setImmediate(resolve));
    log.info('after the break');
    await new Promise((resolve) => setImmediate(resolve));
    expect(broken.destroyed).toBe(true);
    expect(broken.listenerCount('error')).toBe(1);
    jsonLogger({ level: 'info', destination: broken }).info('a second logger on the same stream adds no listener');
    expect(broken.listenerCount('error')).toBe(1);
  });

  it('LOG_LEVEL that is not a level stops the program with the variable and the levels named', () => {
    expect(() => createLogger('nodepulse-agent', { LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
    expect(() => createLogger('nodepulse-agent', { LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL: "verbose" is not a level; use one of fatal, error, warn, info, debug, trace, silent/);
    expect(createLogger('nodepulse-agent', { LOG_LEVEL: 'debug' }).level).toBe('debug');
  });
});
