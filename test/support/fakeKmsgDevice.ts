import type { KmsgFs } from '../../agent/monitors/kmsgReader.js';

/** One /dev/kmsg record as a read returns it: `level,seq,usec,flags;text`. */
export const kmsgLine = (seq: number, text: string, level = 6) => `${level},${seq},999000000,-;${text}\n`;

/**
 * /dev/kmsg as the reader sees it, for what a real one cannot be made to do on cue (EPIPE, a
 * burst already in the ring when the reader starts). Every descriptor has its own position, as
 * on the device: a non-blocking read returns the record there, an error where the log holds its
 * code instead (`EPIPE`: overwritten; any other, such as `EIO`, once), or EAGAIN at the end; a blocking read waits for a record to be appended. A blocking read that
 * would wait but was made synchronously throws: on the device it would freeze the agent.
 */
export function fakeKmsgDevice(records: string[]) {
  const log = [...records];
  const position = new Map<number, number>();
  const nonBlocking = new Set<number>();
  const waiting: Array<() => void> = [];
  let nextFd = 90;
  const opened: number[] = [];
  const closed: number[] = [];
  const device = {
    /** Descriptors opened and closed, in order. */
    opened,
    closed,
    /** Reads of the descriptor the records come from, and of the doorbell (synchronous catch-up, and waits on the thread pool). */
    reads: { records: 0, doorbellCatchUp: 0, doorbellWaits: 0 },
    append(record: string) {
      log.push(record);
      for (const wake of waiting.splice(0)) wake();
    },
    fs: {} as KmsgFs,
  };
  const take = (fd: number, buffer: Buffer): number => {
    let at = position.get(fd) ?? 0;
    // An error other than EPIPE happens once, to the first read that meets it.
    while (log[at] === '') at += 1;
    const record = log[at];
    if (record === undefined) throw Object.assign(new Error('EAGAIN: resource temporarily unavailable, read'), { code: 'EAGAIN' });
    position.set(fd, at + 1);
    if (/^E[A-Z]+$/.test(record)) {
      if (record !== 'EPIPE') log[at] = '';
      throw Object.assign(new Error(`${record}: read`), { code: record });
    }
    return buffer.write(record);
  };
  const openFd = (flags: string | number) => {
    const fd = nextFd++;
    opened.push(fd);
    position.set(fd, 0);
    if (flags !== 'r') nonBlocking.add(fd);
    return fd;
  };
  // Character device 1:11, as /dev/kmsg.
  const stats = { isFile: () => false, isCharacterDevice: () => true, rdev: (1 << 8) | 11 };
  device.fs = {
    open: ((_path: string, flags: string | number, cb: (err: null, fd: number) => void) => cb(null, openFd(flags))) as unknown as KmsgFs['open'],
    openSync: ((_path: string, flags: string | number) => openFd(flags)) as unknown as KmsgFs['openSync'],
    fstat: ((_fd: number, cb: (err: null, s: typeof stats) => void) => cb(null, stats)) as unknown as KmsgFs['fstat'],
    fstatSync: (() => stats) as unknown as KmsgFs['fstatSync'],
    close: ((fd: number, cb: () => void) => {
      closed.push(fd);
      cb();
    }) as unknown as KmsgFs['close'],
    readSync: ((fd: number, buffer: Buffer) => {
      if (nonBlocking.has(fd)) {
        device.reads.records += 1;
        return take(fd, buffer);
      }
      device.reads.doorbellCatchUp += 1;
      if ((position.get(fd) ?? 0) >= log.length) throw new Error('a blocking read with nothing to read was made on the main thread: the agent would freeze');
      return take(fd, buffer);
    }) as unknown as KmsgFs['readSync'],
    read: ((fd: number, buffer: Buffer, _off: number, _len: number, _pos: null, cb: (err: NodeJS.ErrnoException | null, bytes: number) => void) => {
      device.reads.doorbellWaits += 1;
      const attempt = () => {
        try {
          const bytes = take(fd, buffer);
          setImmediate(() => cb(null, bytes));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') waiting.push(attempt);
          else setImmediate(() => cb(err as NodeJS.ErrnoException, 0));
        }
      };
      attempt();
    }) as unknown as KmsgFs['read'],
  };
  return device;
}
