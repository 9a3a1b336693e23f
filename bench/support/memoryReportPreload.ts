import { readFileSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

/**
 * Loaded into the agent with `node --import` by bench/agentMemory.ts, never by the agent itself.
 * On SIGUSR2 it writes what the process's memory is made of to $NODEPULSE_MEMORY_REPORT
 * (JSON) and a heap snapshot beside it, measured before the snapshot inflates the heap.
 */
const reportPath = process.env.NODEPULSE_MEMORY_REPORT;
if (reportPath) {
  process.on('SIGUSR2', () => {
    const report = {
      memoryUsage: process.memoryUsage(),
      heapSpaces: v8.getHeapSpaceStatistics(),
      heapCode: v8.getHeapCodeStatistics(),
      status: readFileSync('/proc/self/status', 'utf8'),
      threads: Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0),
    };
    const snapshot = v8.writeHeapSnapshot(`${reportPath}.heapsnapshot`);
    writeFileSync(reportPath, JSON.stringify({ ...report, snapshot }));
  });
}
