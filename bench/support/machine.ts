import { cpus, release, totalmem } from 'node:os';

/** What the figures were taken on. */
export function machineFacts() {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
  };
}
