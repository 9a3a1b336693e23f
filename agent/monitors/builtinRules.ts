import { logMonitorConditionTypes as types } from '../../common/contract.js';
import type { NpdLogMonitorFile } from './logRules.js';

/**
 * The built-in kernel-log rule sets, in NPD's rule-file format (read by the same loader as an
 * operator's file). `kernel` and `readonly` restate node-problem-detector's defaults,
 * config/kernel-monitor.json and config/readonly-monitor.json of
 * kubernetes/node-problem-detector (Copyright The Kubernetes Authors, Apache License 2.0):
 * the same conditions, reasons and patterns, so a node reports what NPD would
 * (test/unit/kernelRules.test.ts runs NPD's own file beside these).
 */
export const kernelRules: NpdLogMonitorFile = {
  plugin: 'kmsg',
  logPath: '/dev/kmsg',
  lookback: '5m',
  bufferSize: 10,
  source: 'kernel-monitor',
  conditions: [
    { type: types.kernelDeadlock, reason: 'KernelHasNoDeadlock', message: 'kernel has no deadlock' },
    { type: types.xfsShutdown, reason: 'XfsHasNotShutDown', message: 'XFS has not shutdown' },
    { type: types.cperHardwareErrorFatal, reason: 'CperHardwareHasNoFatalError', message: 'UEFI CPER has no fatal error' },
  ],
  rules: [
    { type: 'temporary', reason: 'OOMKilling', pattern: 'Killed process \\d+ (.+) total-vm:\\d+kB, anon-rss:\\d+kB, file-rss:\\d+kB.*' },
    { type: 'temporary', reason: 'TaskHung', pattern: 'task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\.' },
    { type: 'temporary', reason: 'UnregisterNetDevice', pattern: 'unregister_netdevice: waiting for \\w+ to become free. Usage count = \\d+' },
    { type: 'temporary', reason: 'KernelOops', pattern: 'BUG: unable to handle kernel NULL pointer dereference at .*' },
    { type: 'temporary', reason: 'KernelOops', pattern: 'divide error: 0000 \\[#\\d+\\] SMP' },
    { type: 'temporary', reason: 'Ext4Error', pattern: 'EXT4-fs error .*' },
    { type: 'temporary', reason: 'Ext4Warning', pattern: 'EXT4-fs warning .*' },
    { type: 'temporary', reason: 'IOError', pattern: 'Buffer I/O error .*' },
    { type: 'permanent', condition: types.xfsShutdown, reason: 'XfsHasShutdown', pattern: 'XFS .* Shutting down filesystem.?' },
    { type: 'temporary', reason: 'MemoryReadError', pattern: 'CE memory read error .*' },
    { type: 'temporary', reason: 'CperHardwareErrorCorrected', pattern: '.*\\[Hardware Error\\]: event severity: corrected$' },
    { type: 'temporary', reason: 'CperHardwareErrorRecoverable', pattern: '.*\\[Hardware Error\\]: event severity: recoverable$' },
    { type: 'permanent', condition: types.cperHardwareErrorFatal, reason: 'CperHardwareErrorFatal', pattern: '.*\\[Hardware Error\\]: event severity: fatal$' },
    { type: 'permanent', condition: types.kernelDeadlock, reason: 'DockerHung', pattern: 'task docker:\\w+ blocked for more than \\w+ seconds\\.' },
  ],
};

export const readonlyRules: NpdLogMonitorFile = {
  plugin: 'kmsg',
  logPath: '/dev/kmsg',
  lookback: '5m',
  bufferSize: 10,
  source: 'readonly-monitor',
  conditions: [{ type: types.readonlyFilesystem, reason: 'FilesystemIsNotReadOnly', message: 'Filesystem is not read-only' }],
  rules: [{ type: 'permanent', condition: types.readonlyFilesystem, reason: 'FilesystemIsReadOnly', pattern: 'Remounting filesystem read-only' }],
};

/**
 * NVIDIA Xid codes that mean the GPU cannot be used until it is reset or the node is
 * rebooted or replaced: the EKS node monitoring agent's list (its "well known" Xids, which it
 * turns into a node condition; any other Xid is an Event there too).
 */
export const fatalXidCodes = [46, 48, 54, 62, 63, 64, 74, 79, 95, 109, 110, 119, 120, 136, 140, 142, 143, 151, 155, 156, 158] as const;

/** `NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.` */
const xidPrefix = 'NVRM: Xid \\(PCI:[0-9A-Fa-f:.]+\\): ';

/** Every Xid code but the fatal ones, as an RE2 alternation (RE2 has no negative lookahead). */
function otherXidCodes(): string {
  const fatal = new Set<number>(fatalXidCodes);
  const codes: number[] = [];
  for (let code = 0; code < 1000; code++) if (!fatal.has(code)) codes.push(code);
  return `(?:${codes.join('|')}|\\d{4,})`;
}

export const gpuRules: NpdLogMonitorFile = {
  plugin: 'kmsg',
  logPath: '/dev/kmsg',
  lookback: '5m',
  bufferSize: 10,
  source: 'gpu-monitor',
  conditions: [{ type: types.gpuProblem, reason: 'NoGPUProblem', message: 'no NVIDIA GPU error in the kernel log' }],
  rules: [
    ...fatalXidCodes.map((code) => ({
      type: 'permanent' as const,
      condition: types.gpuProblem,
      reason: `NvidiaXID${code}Error`,
      pattern: `${xidPrefix}${code},.*`,
    })),
    { type: 'temporary', reason: 'NvidiaXIDWarning', pattern: `${xidPrefix}${otherXidCodes()},.*` },
    // The driver's own line when a GPU drops off PCIe (also logged without an Xid).
    { type: 'permanent', condition: types.gpuProblem, reason: 'GPUFellOffTheBus', pattern: 'NVRM: GPU [0-9A-Fa-f:.]+: GPU has fallen off the bus\\.?' },
  ],
};

export const builtinRuleSets = { kernel: kernelRules, readonly: readonlyRules, gpu: gpuRules } as const;
export type BuiltinRuleSet = keyof typeof builtinRuleSets;
