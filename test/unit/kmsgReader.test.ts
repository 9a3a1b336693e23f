import { spawnSync } from 'node:child_process';
import { close, closeSync, constants, fstat, fstatSync, mkdtempSync, open, openSync, read, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KmsgReader, recordSeq, type KmsgFs, type KmsgRecord } from '../../agent/monitors/kmsgReader.js';
import { fakeKmsgDevice, kmsgLine as line } from '../support/fakeKmsgDevice.js';

const readers: KmsgReader[] = [];
afterEach(() => {
  for (const reader of readers.splice(0)) reader.stop();
});

function follow(path: string, fs?: KmsgFs, options = { retryMs: 20, followMs: 100 }) {
  const reader = new KmsgReader(path, options, fs);
  readers.push(reader);
  const records: KmsgRecord[] = [];
  reader.on('record', (r) => records.push(r));
  reader.on('error', () => {});
  return { reader, records };
}

describe('the /dev/kmsg reader', () => {
  it('reads a burst already in the ring on the main thread and brings the doorbell up to it with a thread-pool wait per 256 records, not per record; the next record wakes it once', async () => {
    const device = fakeKmsgDevice(Array.from({ length: 2000 }, (_, i) => line(100 + i, `nodepulse-test: line ${i}`)));
    const { reader, records } = follow('/dev/kmsg', device.fs);
    reader.openNow();
    reader.start();
    await vi.waitFor(() => expect(records).toHaveLength(2000));
    // Caught up: every record read once by the doorbell too, and its last wait blocks.
    await vi.waitFor(() => expect(device.reads.doorbellCatchUp + device.reads.doorbellWaits).toBe(2001));
    const waits = device.reads.doorbellWaits;
    expect(waits).toBeLessThanOrEqual(Math.ceil(2000 / 256) + 1);
    device.append(line(2100, 'nodepulse-test: one more'));
    await vi.waitFor(() => expect(records).toHaveLength(2001));
    await vi.waitFor(() => expect(device.reads.doorbellWaits).toBe(waits + 1));
    expect(reader.lostTotal).toBe(0);
  });

  it('after a read error opens the log again, says it reads again, and reads it from its oldest record', async () => {
    const device = fakeKmsgDevice([line(1, 'a'), line(2, 'b'), 'EIO', line(3, 'c')]);
    const { reader, records } = follow('/dev/kmsg', device.fs);
    const said: string[] = [];
    reader.on('error', (err) => said.push(err.code ?? ''));
    reader.on('reading', () => said.push('reading'));
    reader.start();
    await vi.waitFor(() => expect(records.map((r) => r.message)).toEqual(['a', 'b', 'a', 'b', 'c']));
    expect(said).toEqual(['reading', 'EIO', 'reading']);
  });

  it('stopping while the doorbell waits closes the doorbell only once that read has ended, so its number cannot be reused under the read', async () => {
    const device = fakeKmsgDevice([line(1, 'a')]);
    const { reader, records } = follow('/dev/kmsg', device.fs);
    reader.openNow();
    reader.start();
    await vi.waitFor(() => expect(device.reads.doorbellWaits).toBe(1));
    const [readingFd, doorbellFd] = device.opened;
    reader.stop();
    expect(device.closed).toEqual([readingFd]);
    device.append(line(2, 'b'));
    await vi.waitFor(() => expect(device.closed).toEqual([readingFd, doorbellFd]));
    expect(records.map((r) => r.message)).toEqual(['a']);
  });

  it('follows a character device that ends (/dev/null) every followMs instead of spinning on it', async () => {
    let reads = 0;
    const counting: KmsgFs = {
      open,
      openSync,
      close,
      fstat,
      fstatSync,
      readSync,
      read: ((...args: Parameters<typeof read>) => ((reads += 1), read(...args))) as typeof read,
    };
    const { reader } = follow('/dev/null', counting);
    reader.openNow();
    reader.start();
    await new Promise((resolve) => setTimeout(resolve, 550));
    // Spinning would be thousands of reads; followMs (100) allows six.
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(8);
  });

  it('reads a FIFO with one descriptor, so every record written arrives (a second one would take some)', async () => {
    const fifoDir = mkdtempSync(join(tmpdir(), 'nodepulse-kmsg-fifo-'));
    const fifo = join(fifoDir, 'kmsg');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // A writer is there first (it needs a reader to open), so no blocking open can hang this test.
    const placeholder = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      const { reader, records } = follow(fifo);
      reader.openNow();
      reader.start();
      for (let i = 1; i <= 20; i += 1) writeSync(writer, line(i, `record ${i}`));
      await vi.waitFor(() => expect(records).toHaveLength(20));
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    } finally {
      closeSync(writer);
      closeSync(placeholder);
      rmSync(fifoDir, { recursive: true });
    }
  });

  it('reads a record\'s sequence number from its header alone, and refuses one without it', () => {
    const at = (text: string) => recordSeq(Buffer.from(text), Buffer.byteLength(text));
    expect(at('6,1234,5678,-;text')).toBe(1234);
    expect(at('6,,5678,-;text')).toBeUndefined();
    expect(at('6,12a,5678,-;text')).toBeUndefined();
    expect(at('6,1234')).toBeUndefined();
  });
});
