import { readFileSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

/**
 * Loaded into a measured process with `node --import` by the benchmarks, never by the agent or
 * controller themselves. On SIGUSR2 it writes what the process's memory is made of to
 * $NODEPULSE_MEMORY_REPORT (JSON): after a full GC when started with --expose-gc, and with a
 * heap snapshot beside it unless NODEPULSE_MEMORY_SNAPSHOT=no (a large heap takes long to dump).
 */
const reportPath = process.env.NODEPULSE_MEMORY_REPORT;
if (reportPath) {
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const status = readFileSync('/proc/self/status', 'utf8');
    const report = {
      afterGc: gc !== undefined,
      memoryUsage: process.memoryUsage(),
      heapSpaces: v8.getHeapSpaceStatistics(),
      heapCode: v8.getHeapCodeStatistics(),
      status,
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
    };
    const snapshot = process.env.NODEPULSE_MEMORY_SNAPSHOT === 'no' ? undefined : v8.writeHeapSnapshot(`${reportPath}.heapsnapshot`);
    writeFileSync(reportPath, JSON.stringify({ ...report, snapshot }));
  });
}
