/**
 * The Node condition types the agent owns, one per probe. Every type ends in `Problem` so it
 * can never collide with the kubelet's own (Ready, MemoryPressure, DiskPressure, PIDPressure,
 * NetworkUnavailable) and reads the NPD way: True means the problem is present.
 */
export const conditionTypeByProbe = {
  cpu: 'CPUPressureProblem',
  memory: 'MemoryPressureProblem',
  pid: 'PIDPressureProblem',
  diskIO: 'DiskIOProblem',
  diskSpace: 'DiskSpaceProblem',
  dns: 'DNSProblem',
  kubelet: 'KubeletProblem',
  konnectivity: 'KonnectivityProblem',
} as const;

export type ProbeName = keyof typeof conditionTypeByProbe;
export type ConditionType = (typeof conditionTypeByProbe)[ProbeName];

export const probeNames = Object.keys(conditionTypeByProbe) as ProbeName[];
export const ownedConditionTypes: readonly ConditionType[] = Object.values(conditionTypeByProbe);

/** Reasons the engine itself sets (probes set all the others). */
export const engineReasons = {
  /** Initial state: the check exists and has not found a problem yet. */
  pending: 'NoProblemYet',
  /** The probe itself failed repeatedly; the node's state is unknown. */
  probeError: 'ProbeError',
} as const;
