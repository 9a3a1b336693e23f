import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
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

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443', { cause: new TypeError('socket closed') }), { code: 'ECONNREFUSED', errno: -111 });
const both = new AggregateError([new Error('a'), new RangeError('b')], 'two failed');
/** What a probe's deadline throws (signal.throwIfAborted()): a DOMException whose name and code are inherited getters. */
const timedOut = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
const shared = ['KernelDeadlock'];

/** The calls the programs make: message only, fields and message, errors (with a code and a cause, aggregate, a probe's timeout), a child's bindings, one array under two keys. */
function logEverything(log: Logger): void {
  log.info('nodepulse agent running');
  log.warn({ err: refused, retryInMs: 400 }, 'publishing to the API server failed; backing off');
  log.error({ err: both }, 'both failed');
  log.warn({ probe: 'diskSpace', err: timedOut }, 'probe failed');
  log.child({ monitor: 'kernel' }).info({ lost: 3, nested: { list: [1, 'two', null], flag: true } }, 'kernel log records were overwritten');
  log.info({ adopted: shared, removing: shared }, 'adopted node conditions');
  log.error(refused);
  log.warn({ err: refused });
  log.fatal({ code: 2 }, 'fatal');
  log.debug({ node: 'aks-1' }, 'reconciled');
  log.trace({ node: 'aks-1' }, 'below the level');
}

describe('the JSON logger', () => {
  it('writes what pino writes for the calls the programs make, key for key and in the same order, so log pipelines built for pino keep parsing the lines', () => {
    const ours = collect();
    const theirs = collect();
    logEverything(jsonLogger({ name: 'nodepulse-agent', level: 'debug', destination: ours.destination }));
    logEverything(pino({ name: 'nodepulse-agent', level: 'debug', timestamp: stdTimeFunctions.isoTime }, theirs.destination) as unknown as Logger);
    const withoutTime = (lines: Line[]) => lines.map(({ time, ...rest }) => (expect(String(time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), rest));
    expect(ours.lines).toHaveLength(10);
    expect(withoutTime(ours.lines)).toEqual(withoutTime(theirs.lines));
    expect(ours.lines.map((l) => Object.keys(l))).toEqual(theirs.lines.map((l) => Object.keys(l)));
    expect(ours.raw.every((line) => line.startsWith('{"level":') && line.endsWith('}\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    expect(ours.lines[1]).toMatchObject({ level: 40, err: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:6443: socket closed', code: 'ECONNREFUSED' } });
    expect(ours.lines[3]).toMatchObject({ err: { type: 'DOMException', name: 'TimeoutError', code: 23 } });
    expect(ours.lines[8]).toMatchObject({ level: 60 });
  });

  it('drops lines below its level, and a silent logger writes nothing', () => {
    const warn = collect();
    logEverything(jsonLogger({ level: 'warn', destination: warn.destination }));
    expect(warn.lines.map((l) => l.level)).toEqual([40, 50, 40, 50, 40, 60]);
    const silent = collect();
    logEverything(jsonLogger({ level: 'silent', destination: silent.destination }));
    expect(silent.lines).toEqual([]);
  });

  it('a field that cannot be written (a throwing getter or toJSON, a cycle, a bigint) costs that field only: the line, its other fields and the bindings stay', () => {
    const { destination, lines } = collect();
    const log = jsonLogger({ name: 'nodepulse-agent', level: 'info', destination }).child({ monitor: 'kernel' });
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    const selfish = Object.assign(new Error('self'), { again: undefined as unknown });
    selfish.again = selfish;
    log.info({ loop, count: 12n, ok: 1 }, 'odd fields');
    log.info({ ok: 1, broken: { toJSON: () => { throw new Error('no JSON for you'); } } }, 'a throwing toJSON');
    log.info({ ok: 1, get broken() { throw new Error('no getter for you'); } }, 'a throwing getter');
    log.info({ ok: 1, broken: { toJSON: () => { throw undefined; } } }, 'a throw of undefined');
    log.warn({ err: selfish, ok: 1 }, 'an error inside itself');
    expect(lines.map((l) => l.msg)).toEqual(['odd fields', 'a throwing toJSON', 'a throwing getter', 'a throw of undefined', 'an error inside itself']);
    expect(lines.every((l) => l.monitor === 'kernel' && l.ok === 1 && l.name === 'nodepulse-agent' && typeof l.pid === 'number' && typeof l.hostname === 'string')).toBe(true);
    expect(lines[0]).toMatchObject({ loop: { name: 'loop', self: '[Circular]' }, count: '12' });
    expect(lines[1]?.broken).toBe('[unable to serialize: no JSON for you]');
    expect(lines[2]?.broken).toBe('[unable to serialize: no getter for you]');
    expect(lines[3]?.broken).toBe('[unable to serialize: undefined]');
    expect(lines[4]).toMatchObject({ err: { type: 'Error', message: 'self', again: '[Circular]' } });
  });

  it('no log call throws: not a Proxy whose keys cannot be listed, not a bad child binding, not a sink that throws', () => {
    const { destination, lines } = collect();
    const log = jsonLogger({ level: 'info', destination });
    const hostile = new Proxy({}, { ownKeys: () => { throw new Error('no keys'); } });
    expect(() => log.info(hostile, 'hostile fields')).not.toThrow();
    expect(lines[0]).toMatchObject({ msg: 'hostile fields', logError: 'fields could not be read: [unable to serialize: no keys]' });
    expect(() => log.child({ get node() { throw new Error('no node'); } }).info('child')).not.toThrow();
    expect(lines[1]).toMatchObject({ node: '[unable to serialize: no node]', msg: 'child' });
    const throwing = jsonLogger({ level: 'info', destination: { write: () => { throw new Error('disk full'); } } });
    expect(() => throwing.error({ err: refused }, 'lost, quietly')).not.toThrow();
  });

  it('fields named level or time do not change the line\'s level or time (pino would write them twice)', () => {
    const { destination, lines, raw } = collect();
    jsonLogger({ level: 'info', destination }).warn({ level: 'debug', time: 'yesterday' }, 'spoofed');
    expect(lines[0]?.level).toBe(40);
    expect(lines[0]?.time).not.toBe('yesterday');
    expect(raw[0]?.match(/"level"/g)).toHaveLength(1);
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

  it('a program that fails right after logging a lot still delivers every line before it exits, even to a reader that is slow to read', async () => {
    const cliRunner = fileURLToPath(new URL('../../dist/common/cliRunner.js', import.meta.url));
    const log = fileURLToPath(new URL('../../dist/common/log.js', import.meta.url));
    const script =
      `const { runCli } = await import(${JSON.stringify(cliRunner)}); const { createLogger } = await import(${JSON.stringify(log)});` +
      `const log = createLogger('t', {}); runCli('t', async () => { for (let i = 0; i < 300; i++) log.info({ i, pad: 'x'.repeat(1000) }, 'line'); log.info('LAST'); throw new Error('failed after logging'); }, []);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stdout.resume();
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as Line);
    expect(lines).toHaveLength(301);
    expect(lines.at(-1)?.msg).toBe('LAST');
  });

  it('createLogger writes where it is told (--once logs to stderr), at LOG_LEVEL, and a LOG_LEVEL that is not a level stops the program with the variable and the levels named', () => {
    const { destination, lines } = collect();
    const log = createLogger('nodepulse-agent', { LOG_LEVEL: 'debug' }, destination);
    expect(log.level).toBe('debug');
    log.debug('to the destination');
    expect(lines).toMatchObject([{ level: 20, name: 'nodepulse-agent', msg: 'to the destination' }]);
    expect(() => createLogger('nodepulse-agent', { LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
    expect(() => createLogger('nodepulse-agent', { LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL: "verbose" is not a level; use one of fatal, error, warn, info, debug, trace, silent/);
  });
});
