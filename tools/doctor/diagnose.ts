import type { ClusterFacts } from './clusterFacts.js';
import { contextFor } from './judging.js';
import { reportApiVersion, type DoctorReport } from './report.js';
import { diskIOStep } from './steps/diskIOStep.js';
import { dnsStep } from './steps/dnsStep.js';
import { kubeletStep } from './steps/kubeletStep.js';
import { nodesStep } from './steps/nodesStep.js';
import { problemDetectorStep } from './steps/problemDetectorStep.js';
import { tunnelStep } from './steps/tunnelStep.js';

export interface DiagnoseOptions {
  now: number;
  agentHeartbeatSeconds: number;
  eventWindowMs: number;
  cluster: DoctorReport['cluster'];
  selector?: string;
  node?: string;
}

/** The six steps over what was read: pure, so every verdict is tested without a cluster or a clock. */
export function diagnose(facts: ClusterFacts, options: DiagnoseOptions): DoctorReport {
  const ctx = contextFor(facts, options.now, {
    agentStaleMs: 2 * options.agentHeartbeatSeconds * 1000,
    eventWindowMs: options.eventWindowMs,
    ...(options.node !== undefined ? { focus: options.node } : {}),
  });
  const steps = [nodesStep, tunnelStep, dnsStep, kubeletStep, problemDetectorStep, diskIOStep].map((step) => step(ctx));
  return {
    apiVersion: reportApiVersion,
    at: new Date(options.now).toISOString(),
    cluster: options.cluster,
    selector: options.selector ?? null,
    nodes: facts.nodes.length,
    nodepulseNodes: ctx.nodepulseNodes.size,
    steps,
    exitCode: steps.some((s) => s.verdict === 'problem') ? 1 : 0,
  };
}
