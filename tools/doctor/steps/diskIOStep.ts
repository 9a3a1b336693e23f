import { probeReasons } from '../../../common/contract.js';
import { agentItem, combine, nodepulseMeasures, stepReport, type DoctorContext } from '../judging.js';
import type { StepReport } from '../report.js';

/**
 * Step 6: a disk at its provisioned IOPS or MB/s cap (throughput = IOPS x IO size) makes the
 * node wait on IO, and since sockets, the CNI and the container runtime are files, everything
 * stalls, up to NotReady. Only nodepulse's diskIO probe measures it from the node.
 */
const advice: Record<string, string> = {
  [probeReasons.diskIO.throttled]:
    'a disk is at its provisioned IOPS or MB/s cap and the node waits on IO: move IO-heavy pods off, or give the pool a larger disk tier or ephemeral OS disks; a throttled OS disk can take the node NotReady',
  [probeReasons.diskIO.pressureHigh]:
    "the node stalls on IO though no device is at a configured cap: set the disks' caps (probes.diskIO.devices) to tell throttling apart, and find the IO-heavy pods on the node",
};

export function diskIOStep(ctx: DoctorContext): StepReport {
  return stepReport('diskIO', ctx, (node) => combine(node.name, [agentItem(node, 'diskIO', ctx, (c) => advice[c.reason ?? ''] ?? 'see the condition message for the device')]), {
    ...(nodepulseMeasures(ctx, 'diskIO')
      ? {}
      : {
          withNodepulse:
            "Kubernetes reports no disk throttling; nodepulse's diskIO probe compares every device's IOPS and MB/s with its cap (probes.diskIO.devices) and reads IO stall from PSI on every node",
        }),
    okSummary: (n) => `${n} without IO throttling`,
  });
}
