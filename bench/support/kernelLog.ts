import { closeSync, constants, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseKmsgRecord } from '../../agent/monitors/kmsgReader.js';

/**
 * The real kernel log for benchmarks that need it (root only): lines written into the ring
 * buffer through /dev/kmsg, the newest sequence number, the printk_devkmsg switch, and NPD rule
 * files whose patterns carry a nonce. The ring buffer is the whole machine's: every line a
 * benchmark writes carries its run's nonce, so no permanent built-in rule (ours or NPD's) and
 * no other run's rules match it.
 */

export const KMSG = '/dev/kmsg';
const DEVKMSG_SYSCTL = '/proc/sys/kernel/printk_devkmsg';

/**
 * Syslog level 6 (info): below the console loglevel (/proc/sys/kernel/printk, 4 here), so the
 * kernel does not also print bench lines to the console; the monitors read every level.
 */
const INFO = 6;

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A `/dev/kmsg` writer: one write() per record, as user space logs. */
export class KmsgWriter {
  private readonly fd: number;

  constructor(path = KMSG) {
    this.fd = openSync(path, 'w');
  }

  /** One record at level 6; the text must not hold a newline (that would make two records). */
  write(text: string): void {
    writeSync(this.fd, `<${INFO}>${text}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * The sequence number of the newest record in the ring buffer: a non-blocking reader opened
 * now starts at the oldest record and reads to the end (EAGAIN). Records overwritten while it
 * reads (EPIPE) are skipped; it only wants the last.
 */
export function newestKmsgSeq(path = KMSG): number {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buffer = Buffer.allocUnsafe(8192);
  let last = -1;
  try {
    for (;;) {
      let bytes: number;
      try {
        bytes = readSync(fd, buffer, 0, buffer.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue;
        if (code === 'EAGAIN') return last;
        throw err;
      }
      if (bytes === 0) return last;
      const record = parseKmsgRecord(buffer.toString('utf8', 0, bytes));
      if (record) last = record.seq;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * printk_devkmsg: `ratelimit` (the default) lets each writer of /dev/kmsg burst 10 records per
 * 5 s and drops the rest ("N output lines suppressed"), `on` takes every record. Set for the
 * benchmark and put back after; `restore` is safe to call twice.
 */
export function setDevkmsg(value: 'on' | 'ratelimit' | 'off'): { before: string; restore: () => void } {
  const before = readFileSync(DEVKMSG_SYSCTL, 'utf8').trim();
  // The kernel's parser takes the word with its newline (without it: EINVAL).
  if (before !== value) writeFileSync(DEVKMSG_SYSCTL, `${value}\n`);
  let restored = false;
  return {
    before,
    restore: () => {
      if (restored || before === value) return;
      restored = true;
      writeFileSync(DEVKMSG_SYSCTL, `${before}\n`);
    },
  };
}

export function devkmsgSetting(): string {
  return readFileSync(DEVKMSG_SYSCTL, 'utf8').trim();
}

/** Characters RE2 and JavaScript treat alike only when escaped; a nonce is hex, so none. */
const NONCE = /^[0-9a-f]{6,32}$/;

/**
 * An NPD system-log-monitor file (our format's one addition: clearAfterSeconds) for a
 * benchmark's own lines: every pattern is `nodepulse-bench <nonce> <word> <digits>`, so only
 * lines this run writes match it.
 */
export function nonceRuleFile(
  dir: string,
  options: {
    nonce: string;
    source: string;
    condition?: { type: string; healthyReason: string; reason: string; word: string; clearAfterSeconds?: number };
    temporary?: Array<{ reason: string; word: string }>;
  },
): { path: string; linePrefix: string } {
  if (!NONCE.test(options.nonce)) throw new Error(`nonce "${options.nonce}" must be 6-32 lowercase hex digits`);
  const linePrefix = `nodepulse-bench ${options.nonce}`;
  const pattern = (word: string) => `${linePrefix} ${word} \\d+`;
  const { condition } = options;
  const file = {
    plugin: 'kmsg',
    logPath: KMSG,
    lookback: '0',
    bufferSize: 1,
    source: options.source,
    conditions: condition ? [{ type: condition.type, reason: condition.healthyReason, message: `no "${linePrefix} ${condition.word}" line` }] : [],
    rules: [
      ...(condition
        ? [{ type: 'permanent', condition: condition.type, reason: condition.reason, pattern: pattern(condition.word), ...(condition.clearAfterSeconds ? { clearAfterSeconds: condition.clearAfterSeconds } : {}) }]
        : []),
      ...(options.temporary ?? []).map((rule) => ({ type: 'temporary', reason: rule.reason, pattern: pattern(rule.word) })),
    ],
  };
  const path = join(dir, `${options.source}.json`);
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  return { path, linePrefix };
}
