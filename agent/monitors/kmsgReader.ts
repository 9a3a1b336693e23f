import { EventEmitter } from 'node:events';
import { close, constants, fstat, open, openSync, read, readSync } from 'node:fs';

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
  readSync: typeof readSync;
  close: typeof close;
  fstat: typeof fstat;
}

const nodeFs: KmsgFs = { open, openSync, read, readSync, close, fstat };

/** Opened so that a read returns EAGAIN instead of waiting when the reader has caught up. */
const NON_BLOCKING = constants.O_RDONLY | constants.O_NONBLOCK;

/** Records read in one go before the rest of the agent gets a turn (a flood must not starve the probes). */
const DRAIN_BATCH = 256;

/**
 * One long-lived reader of /dev/kmsg, event-driven: no polling and no `dmesg`. Each read of the
 * device returns one record. A thread-pool read per record kept the reader below 10,000 records
 * a second (bench/kmsgFlood: 82 % read, the rest overwritten), so the records are read on the main
 * thread from a non-blocking descriptor until EAGAIN, and the wait for the next one is a blocking
 * read on a second descriptor (the doorbell), which the kernel wakes when a record newer than its
 * own position exists. Each descriptor has its own position in the ring buffer, so the doorbell
 * only ever wakes the reader; the records come from the first. The buffers are reused; a record
 * costs one string. A regular file (a fixture where the kernel log cannot be written) is read
 * with one descriptor and followed like `tail -f`.
 */
export class KmsgReader extends EventEmitter<KmsgReaderEvents> {
  private fd: number | undefined;
  private doorbell: number | undefined;
  private stopped = false;
  private lastSeq: number | undefined;
  private pending = '';
  private readonly buffer: Buffer;
  private doorbellBuffer: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
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
   * to its own user: agent/privileges.ts); `start()` reads from these descriptors. A failure is
   * kept and reported by `start()`.
   */
  openNow(): void {
    let fd: number | undefined;
    try {
      fd = this.fs.openSync(this.path, NON_BLOCKING);
      this.doorbell = this.fs.openSync(this.path, 'r');
      this.fd = fd;
    } catch (err) {
      if (fd !== undefined) this.fs.close(fd, () => {});
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
    this.fs.open(this.path, NON_BLOCKING, (err, fd) => {
      if (err) return this.stopped ? undefined : this.retry(err);
      this.fs.open(this.path, 'r', (doorbellErr, doorbell) => {
        this.fd = fd;
        if (!doorbellErr) this.doorbell = doorbell;
        if (this.stopped) return this.closeAll();
        if (doorbellErr) return this.fail(doorbellErr);
        this.begin(fd);
      });
    });
  }

  private begin(fd: number): void {
    this.fd = fd;
    this.fs.fstat(fd, (statErr, stats) => {
      if (statErr || !stats.isFile()) return this.drain();
      this.closeDoorbell();
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
    clearImmediate(this.immediate);
    this.closeAll();
  }

  private closeDoorbell(): void {
    if (this.doorbell === undefined) return;
    const doorbell = this.doorbell;
    this.doorbell = undefined;
    this.fs.close(doorbell, () => {});
  }

  private closeAll(): void {
    this.closeDoorbell();
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    this.fs.close(fd, () => {});
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
    for (let n = 0; n < DRAIN_BATCH; n += 1) {
      let bytes: number;
      try {
        bytes = this.fs.readSync(fd, this.buffer, 0, this.buffer.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // EPIPE: the ring buffer overwrote what we were about to read; the next read returns the
        // oldest record left, and its sequence number says how many were lost.
        if (code === 'EPIPE') continue;
        if (code === 'EAGAIN') return this.waitForRecord();
        return this.fail(err as NodeJS.ErrnoException);
      }
      if (bytes === 0) return this.waitForRecord();
      this.deliver(this.buffer.toString('utf8', 0, bytes));
      if (this.stopped) return;
    }
    this.immediate = setImmediate(() => this.drain());
  }

  /**
   * A blocking read of the doorbell descriptor on the thread pool: it returns when a record newer
   * than the doorbell's own position exists (at once while it trails the reader, as after a
   * burst), and what it read is dropped.
   */
  private waitForRecord(): void {
    const doorbell = this.doorbell;
    if (this.stopped || doorbell === undefined) return;
    this.doorbellBuffer ??= Buffer.allocUnsafe(this.buffer.length);
    this.fs.read(doorbell, this.doorbellBuffer, 0, this.doorbellBuffer.length, null, (err) => {
      if (this.stopped) return;
      if (err && err.code !== 'EPIPE') return this.fail(err);
      this.drain();
    });
  }

  /** A regular file: read on the thread pool, followed at EOF every `followMs`. */
  private next(): void {
    const fd = this.fd;
    if (this.stopped || fd === undefined) return;
    this.fs.read(fd, this.buffer, 0, this.buffer.length, null, (err, bytes) => {
      if (this.stopped) return;
      if (err) return this.fail(err);
      if (bytes === 0) {
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
