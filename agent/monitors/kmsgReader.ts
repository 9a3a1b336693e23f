import { EventEmitter } from 'node:events';
import { close, fstat, open, openSync, read } from 'node:fs';

/** One record of /dev/kmsg (Documentation/ABI/testing/dev-kmsg): `prio,seq,usec,flags[,...];text`. */
export interface KmsgRecord {
  /** Syslog level, 0 (emerg) to 7 (debug). */
  level: number;
  /** Syslog facility: 0 is the kernel, 1 (user) a line written to /dev/kmsg from user space. */
  facility: number;
  /** The kernel's sequence number; a jump means records were overwritten before we read them. */
  seq: number;
  /** Microseconds since boot (the kernel's monotonic clock). */
  usec: number;
  message: string;
}

/**
 * Parses one record. The text keeps the kernel's `\xNN` escapes; the dictionary lines that
 * follow it (` SUBSYSTEM=...`, each starting with a space) are not part of the message.
 */
export function parseKmsgRecord(text: string): KmsgRecord | undefined {
  const semicolon = text.indexOf(';');
  if (semicolon < 0) return undefined;
  const fields = text.slice(0, semicolon).split(',');
  const prio = Number(fields[0]);
  const seq = Number(fields[1]);
  const usec = Number(fields[2]);
  if (!Number.isInteger(prio) || !Number.isInteger(seq) || !Number.isFinite(usec)) return undefined;
  let end = text.indexOf('\n', semicolon);
  if (end < 0) end = text.length;
  return { level: prio & 7, facility: prio >> 3, seq, usec, message: text.slice(semicolon + 1, end).trim() };
}

export interface KmsgReaderEvents {
  record: [KmsgRecord];
  /** Records the kernel overwrote before they were read (the ring buffer wrapped: EPIPE). */
  lost: [number];
  /** The log cannot be opened or read; the reader tries again after `retryMs`. */
  error: [NodeJS.ErrnoException];
}

/** The file calls the reader makes; tests inject failures (EPIPE, EACCES) through these. */
export interface KmsgFs {
  open: typeof open;
  openSync: typeof openSync;
  read: typeof read;
  close: typeof close;
  fstat: typeof fstat;
}

const nodeFs: KmsgFs = { open, openSync, read, close, fstat };

/**
 * One long-lived reader of /dev/kmsg. Each read returns one record, so a read is always
 * outstanding: it waits in the kernel until the next record, no polling and no `dmesg`. The
 * buffer is reused; a record costs one string. A regular file (a fixture where the kernel log
 * cannot be written) is read the same way and followed like `tail -f`.
 */
export class KmsgReader extends EventEmitter<KmsgReaderEvents> {
  private fd: number | undefined;
  private stopped = false;
  private lastSeq: number | undefined;
  private regularFile = false;
  private pending = '';
  private readonly buffer: Buffer;
  private timer: NodeJS.Timeout | undefined;
  private openError: NodeJS.ErrnoException | undefined;
  /** Records lost to ring-buffer overwrites since start. */
  lostTotal = 0;

  constructor(
    readonly path: string,
    private readonly options: { retryMs: number; followMs: number } = { retryMs: 30_000, followMs: 100 },
    private readonly fs: KmsgFs = nodeFs,
  ) {
    super();
    // The kernel's largest record (CONSOLE_EXT_LOG_MAX); a smaller buffer gets EINVAL.
    this.buffer = Buffer.allocUnsafe(8192);
  }

  /**
   * Opens the log now, while the agent still holds the privileges the open takes (it then drops
   * to its own user: agent/privileges.ts); `start()` reads from this descriptor. A failure is
   * kept and reported by `start()`.
   */
  openNow(): void {
    try {
      this.fd = this.fs.openSync(this.path, 'r');
    } catch (err) {
      this.openError = err as NodeJS.ErrnoException;
    }
  }

  start(): void {
    if (this.fd !== undefined) return this.begin(this.fd);
    if (this.openError) {
      const err = this.openError;
      this.openError = undefined;
      return this.retry(err);
    }
    this.fs.open(this.path, 'r', (err, fd) => {
      if (this.stopped) {
        if (!err) this.fs.close(fd, () => {});
        return;
      }
      if (err) return this.retry(err);
      this.begin(fd);
    });
  }

  private begin(fd: number): void {
    this.fd = fd;
    this.fs.fstat(fd, (statErr, stats) => {
      this.regularFile = !statErr && stats.isFile();
      this.next();
    });
  }

  /**
   * Stops reading. A read already waiting in the kernel cannot be cancelled: it ends with the
   * next record or with the process (the agent exits on shutdown rather than wait for it).
   */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      this.fs.close(fd, () => {});
    }
  }

  private retry(err: NodeJS.ErrnoException): void {
    this.emit('error', err);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.start(), this.options.retryMs);
  }

  private next(): void {
    const fd = this.fd;
    if (this.stopped || fd === undefined) return;
    this.fs.read(fd, this.buffer, 0, this.buffer.length, null, (err, bytes) => {
      if (this.stopped) return;
      if (err) {
        // The ring buffer overwrote what we were about to read; the next read returns the
        // oldest record left, and its sequence number says how many were lost.
        if (err.code === 'EPIPE') return this.next();
        this.fd = undefined;
        this.fs.close(fd, () => {});
        return this.retry(err);
      }
      if (bytes === 0) {
        // Only a regular file ends; /dev/kmsg waits for the next record instead.
        this.timer = setTimeout(() => this.next(), this.options.followMs);
        return;
      }
      this.take(this.buffer.toString('utf8', 0, bytes));
      this.next();
    });
  }

  private take(chunk: string): void {
    if (!this.regularFile) return this.deliver(chunk);
    // A file holds many records; each starts on a line that does not begin with a space.
    const text = this.pending + chunk;
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    let record = '';
    for (const line of lines) {
      if (line.startsWith(' ') && record !== '') continue;
      if (record !== '') this.deliver(record);
      record = line;
    }
    if (record !== '') this.deliver(record);
  }

  private deliver(text: string): void {
    const record = parseKmsgRecord(text);
    if (!record) return;
    if (this.lastSeq !== undefined && record.seq > this.lastSeq + 1) {
      const lost = record.seq - this.lastSeq - 1;
      this.lostTotal += lost;
      this.emit('lost', lost);
    }
    this.lastSeq = record.seq;
    this.emit('record', record);
  }
}
