import { EventEmitter } from 'node:events';
import { close, constants, fstat, fstatSync, open, openSync, read, readSync, type Stats } from 'node:fs';

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
  /** The log is being read: after each open (the first, and each after an error), once a read worked. */
  reading: [];
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
  readSync: typeof readSync;
  close: typeof close;
  fstat: typeof fstat;
  fstatSync: typeof fstatSync;
}

const nodeFs: KmsgFs = { open, openSync, read, readSync, close, fstat, fstatSync };

/** Opened so that a read returns EAGAIN instead of waiting when the reader has caught up. */
const NON_BLOCKING = constants.O_RDONLY | constants.O_NONBLOCK;

/** Reads made in one go (records, or the doorbell's catch-up) before the rest of the agent gets a turn: a flood must not starve the probes. */
const BATCH = 256;

/** A read that failed for a moment: EPIPE (the ring buffer overwrote the next record; the next read returns the oldest left) or EINTR (a signal). */
const momentaryReadError = (err: unknown) => ['EPIPE', 'EINTR'].includes((err as NodeJS.ErrnoException).code ?? '');

/** /dev/kmsg is character device 1:11 (Documentation/admin-guide/devices.txt); a tty, say, has one read position for every descriptor. */
function isKernelLog(stats: Stats): boolean {
  if (!stats.isCharacterDevice()) return false;
  // glibc's major() and minor() of a dev_t.
  const rdev = BigInt(stats.rdev);
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return major === 1 && minor === 11;
}

/** The sequence number of a record in `buffer` (`prio,seq,...`), without decoding the rest. */
export function recordSeq(buffer: Buffer, bytes: number): number | undefined {
  let i = buffer.indexOf(0x2c);
  if (i < 0 || i >= bytes) return undefined;
  let seq = 0;
  let digits = 0;
  for (i += 1; i < bytes && buffer[i] !== 0x2c; i += 1, digits += 1) {
    const digit = (buffer[i] as number) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    seq = seq * 10 + digit;
  }
  return digits > 0 && i < bytes ? seq : undefined;
}

/**
 * One long-lived reader of /dev/kmsg, event-driven: no polling and no `dmesg`. Each read of the
 * device returns one record. A thread-pool read per record kept the reader below 10,000 records
 * a second (bench/kmsgFlood: 82 % read, the rest overwritten), so the records are read on the main
 * thread from a non-blocking descriptor until EAGAIN, and the wait for the next one is a blocking
 * read on a second descriptor, the doorbell, which the kernel ends once a record exists at or
 * after the doorbell's own position. Each descriptor has its own position in the ring buffer (and
 * Node has no lseek), so before it waits the doorbell reads up to the last record the first one
 * read, each already there: a burst costs one wake-up. The buffers are reused; a record costs one
 * string. Anything but /dev/kmsg (a fixture file where the kernel log cannot be written, a FIFO)
 * is read with one descriptor and followed like `tail -f`.
 */
export class KmsgReader extends EventEmitter<KmsgReaderEvents> {
  private fd: number | undefined;
  private doorbell: number | undefined;
  /** The last records the doorbell and the reading descriptor read: the doorbell catches up to the second, which it can always reach. */
  private doorbellSeq = -1;
  private fdSeq = -1;
  /** 'reading' was said for the descriptor open now. */
  private announced = false;
  private stopped = false;
  private lastSeq: number | undefined;
  private pending = '';
  private readonly buffer: Buffer;
  private doorbellBuffer: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private openError: NodeJS.ErrnoException | undefined;
  /** Descriptors with a thread-pool read in flight, and those to close when it ends (closing earlier lets a reused number be read). */
  private readonly reading = new Set<number>();
  private readonly closeAfterRead = new Set<number>();
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
   * to its own user: agent/privileges.ts); `start()` reads from these descriptors. A failure is
   * kept and reported by `start()`.
   */
  openNow(): void {
    try {
      this.fd = this.fs.openSync(this.path, NON_BLOCKING);
      if (isKernelLog(this.fs.fstatSync(this.fd))) this.doorbell = this.fs.openSync(this.path, 'r');
    } catch (err) {
      this.closeAll();
      this.openError = err as NodeJS.ErrnoException;
    }
  }

  start(): void {
    if (this.fd !== undefined) return this.begin();
    if (this.openError) {
      const err = this.openError;
      this.openError = undefined;
      return this.retry(err);
    }
    this.fs.open(this.path, NON_BLOCKING, (err, fd) => {
      if (err) return this.stopped ? undefined : this.retry(err);
      this.fd = fd;
      if (this.stopped) return this.closeAll();
      this.fs.fstat(fd, (statErr, stats) => {
        if (this.stopped) return this.closeAll();
        if (statErr) return this.fail(statErr);
        if (!isKernelLog(stats)) return this.begin();
        this.fs.open(this.path, 'r', (doorbellErr, doorbell) => {
          if (!doorbellErr) this.doorbell = doorbell;
          if (this.stopped) return this.closeAll();
          if (doorbellErr) return this.fail(doorbellErr);
          this.begin();
        });
      });
    });
  }

  private begin(): void {
    if (this.doorbell !== undefined) this.drain();
    else this.next();
  }

  /**
   * Stops reading. A read already waiting in the kernel cannot be cancelled: it ends with the
   * next record or with the process (the agent exits on shutdown rather than wait for it).
   */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    this.closeAll();
  }

  private closeAll(): void {
    for (const fd of [this.doorbell, this.fd]) {
      if (fd === undefined) continue;
      if (this.reading.has(fd)) this.closeAfterRead.add(fd);
      else this.fs.close(fd, () => {});
    }
    this.doorbell = undefined;
    this.fd = undefined;
    this.doorbellSeq = -1;
    this.fdSeq = -1;
    this.announced = false;
  }

  private announce(): void {
    if (this.announced) return;
    this.announced = true;
    this.emit('reading');
  }

  /** fs.read on the thread pool; `done` is not called when the descriptor was closed meanwhile (it is closed now). */
  private readAsync(fd: number, buffer: Buffer, done: (err: NodeJS.ErrnoException | null, bytes: number) => void): void {
    this.reading.add(fd);
    this.fs.read(fd, buffer, 0, buffer.length, null, (err, bytes) => {
      this.reading.delete(fd);
      if (this.closeAfterRead.delete(fd)) return this.fs.close(fd, () => {});
      if (this.stopped) return;
      done(err, bytes);
    });
  }

  private retry(err: NodeJS.ErrnoException): void {
    this.emit('error', err);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.start(), this.options.retryMs);
  }

  private fail(err: NodeJS.ErrnoException): void {
    this.closeAll();
    this.retry(err);
  }

  /** Reads every record the kernel holds for us, a batch per turn of the loop, then waits on the doorbell. */
  private drain(): void {
    const fd = this.fd;
    if (this.stopped || fd === undefined) return;
    for (let n = 0; n < BATCH; n += 1) {
      let bytes: number;
      try {
        bytes = this.fs.readSync(fd, this.buffer, 0, this.buffer.length, null);
      } catch (err) {
        // After EPIPE the next record's sequence number says how many were lost.
        if (momentaryReadError(err)) continue;
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return this.fail(err as NodeJS.ErrnoException);
        this.announce();
        return this.waitForRecord();
      }
      this.announce();
      // /dev/kmsg never ends; should a read return nothing, it is followed like a file, not spun on.
      if (bytes === 0) {
        this.timer = setTimeout(() => this.drain(), this.options.followMs);
        return;
      }
      const record = this.deliver(this.buffer.toString('utf8', 0, bytes));
      if (this.stopped) return;
      if (record) this.fdSeq = record.seq;
    }
    this.immediate = setImmediate(() => this.drain());
  }

  /**
   * Brings the doorbell up to the last record the reading descriptor read (each of those reads
   * returns at once: the record, or EPIPE and then the oldest one left), then reads it once more
   * on the thread pool, which waits in the kernel for the next record, or returns at once while
   * the doorbell still trails (after a batch, or a record whose number it could not read). What
   * the doorbell reads is dropped.
   */
  private waitForRecord(): void {
    const doorbell = this.doorbell;
    if (this.stopped || doorbell === undefined) return;
    const buffer = (this.doorbellBuffer ??= Buffer.allocUnsafe(this.buffer.length));
    for (let n = 0; this.doorbellSeq < this.fdSeq && n < BATCH; n += 1) {
      try {
        const seq = recordSeq(buffer, this.fs.readSync(doorbell, buffer, 0, buffer.length, null));
        if (seq === undefined) break;
        this.doorbellSeq = seq;
      } catch (err) {
        if (!momentaryReadError(err)) return this.fail(err as NodeJS.ErrnoException);
      }
    }
    this.readAsync(doorbell, buffer, (err, bytes) => {
      // A read that failed for a moment ends the wait too: the reader looks for itself.
      if (err && !momentaryReadError(err)) return this.fail(err);
      const seq = err ? undefined : recordSeq(buffer, bytes);
      if (seq !== undefined) this.doorbellSeq = seq;
      this.drain();
    });
  }

  /** Not /dev/kmsg: read on the thread pool, followed at EOF (or EAGAIN, a FIFO) every `followMs`. */
  private next(): void {
    const fd = this.fd;
    if (this.stopped || fd === undefined) return;
    this.readAsync(fd, this.buffer, (err, bytes) => {
      if (err && err.code !== 'EAGAIN') return this.fail(err);
      this.announce();
      if (err || bytes === 0) {
        this.timer = setTimeout(() => this.next(), this.options.followMs);
        return;
      }
      this.take(this.buffer.toString('utf8', 0, bytes));
      this.next();
    });
  }

  private take(chunk: string): void {
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

  /** Parses and hands on one record; returns it, or undefined when it is not one. */
  private deliver(text: string): KmsgRecord | undefined {
    const record = parseKmsgRecord(text);
    if (!record) return undefined;
    if (this.lastSeq !== undefined && record.seq > this.lastSeq + 1) {
      const lost = record.seq - this.lastSeq - 1;
      this.lostTotal += lost;
      this.emit('lost', lost);
    }
    this.lastSeq = record.seq;
    this.emit('record', record);
    return record;
  }
}
