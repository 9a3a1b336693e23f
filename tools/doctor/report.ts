/**
 * What `nodepulse doctor` reports, the same in text and in `-o json`. The JSON is a stable
 * interface for scripts: `apiVersion` changes when a field is removed or changes meaning;
 * new fields may be added within a version.
 */
export const reportApiVersion = 'nodepulse.io/doctor/v1';

/** Worst first: a step's verdict is the worst of its findings'. */
export const verdicts = ['problem', 'warning', 'unknown', 'ok'] as const;
export type Verdict = (typeof verdicts)[number];

export const stepIds = ['nodes', 'tunnel', 'dns', 'kubelet', 'problemDetector', 'diskIO'] as const;
export type StepId = (typeof stepIds)[number];

/** The AKS guide's six steps, in its order. */
export const stepTitles: Record<StepId, string> = {
  nodes: 'Nodes Ready, and under which pressure',
  tunnel: 'Control plane -> node tunnel (konnectivity-agent)',
  dns: 'DNS: API server FQDN, upstream through Azure DNS, cluster DNS',
  kubelet: 'Kubelet healthy and free of pressure',
  problemDetector: 'What the node problem detector reports',
  diskIO: 'Disk IOPS and throughput throttling',
};

export type Evidence =
  | {
      kind: 'condition';
      type: string;
      status: string;
      reason: string | null;
      message: string | null;
      /** lastTransitionTime, ISO 8601. */
      since: string | null;
      /** lastHeartbeatTime, ISO 8601. */
      heartbeat: string | null;
    }
  | { kind: 'deployment'; namespace: string; name: string; ready: number; desired: number; available: number; updated: number }
  | { kind: 'pod'; namespace: string; name: string; node: string | null; ready: boolean; restarts: number; lastTermination: string | null }
  | { kind: 'event'; source: string; type: string; reason: string; message: string; count: number; at: string | null }
  | {
      kind: 'remediation';
      step: string;
      phase: string;
      attempt: number;
      stepStartedAt: string | null;
      stepEndedAt: string | null;
      /** The provider's error code, or why a human is needed, or why the annotation could not be read. */
      detail: string | null;
    }
  | { kind: 'taint'; key: string; effect: string };

export interface Finding {
  /** Null for what belongs to no node (the konnectivity-agent Deployment). */
  node: string | null;
  verdict: Verdict;
  /** One line: what was found, e.g. `DiskIOProblem IOThrottled for 14 min: sda at its IOPS cap`. */
  summary: string;
  evidence: Evidence[];
  /** What the guide says to do next about this finding, most urgent first; empty when nothing is to be done. */
  next: string[];
}

export interface StepReport {
  number: number;
  id: StepId;
  title: string;
  verdict: Verdict;
  /** Nodes by verdict; `notMeasured`: nodes nothing reports on for this step. */
  nodes: Record<Verdict | 'notMeasured', number>;
  /** One line across the fleet. */
  summary: string;
  /** Findings that are not ok (with --node: every finding of that node). */
  findings: Finding[];
  /** What nodepulse would add to this step where it does not report; null where it does. */
  withNodepulse: string | null;
}

export interface DoctorReport {
  apiVersion: typeof reportApiVersion;
  /** ISO 8601. */
  at: string;
  cluster: { server: string; context: string | null };
  /** Label selector the nodes were listed with, if any. */
  selector: string | null;
  /** Nodes looked at (one with --node). */
  nodes: number;
  /** Of those, how many carry nodepulse agent conditions. */
  nodepulseNodes: number;
  steps: StepReport[];
  /** 0 nothing found, 1 a problem found. */
  exitCode: 0 | 1;
}

export function worst(list: Iterable<Verdict>): Verdict {
  let rank = verdicts.length - 1;
  for (const v of list) rank = Math.min(rank, verdicts.indexOf(v));
  return verdicts[rank] as Verdict;
}
