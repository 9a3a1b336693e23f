/**
 * The contract between nodepulse's programs (agent, controller, operator tools): condition
 * types and reasons, annotation, label and taint keys, event reasons and component names.
 * Dependency-free on purpose: anything may import it, it imports nothing.
 */
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
  /** AKS's NPD name for it too, so its alerts and repair policies keep working. */
  runtime: 'ContainerRuntimeProblem',
} as const;

export type ProbeName = keyof typeof conditionTypeByProbe;
export type ConditionType = (typeof conditionTypeByProbe)[ProbeName];

export const probeNames = Object.keys(conditionTypeByProbe) as ProbeName[];
export const ownedConditionTypes: readonly ConditionType[] = Object.values(conditionTypeByProbe);

/**
 * Conditions of the monitors that replace node-problem-detector. **The one exception to the
 * `*Problem` convention:** these keep NPD's own names, so a cluster moving from NPD keeps the
 * alerts, dashboards and repair policies that read them (Karpenter's node repair, EKS's and
 * AKS's read KernelDeadlock, ReadonlyFilesystem, ...). None collides with the kubelet's. A
 * rule file may add its own condition types; the agent owns those while they are configured.
 */
export const logMonitorConditionTypes = {
  kernelDeadlock: 'KernelDeadlock',
  readonlyFilesystem: 'ReadonlyFilesystem',
  xfsShutdown: 'XfsShutdown',
  cperHardwareErrorFatal: 'CperHardwareErrorFatal',
  /** Not NPD's (it has no GPU rules): ours, so it follows the convention. */
  gpuProblem: 'GPUProblem',
} as const;

/** NPD's names for a crash-looping kubelet or container runtime (its systemd monitor). */
export const restartConditionTypes = {
  kubelet: 'FrequentKubeletRestart',
  containerd: 'FrequentContainerdRestart',
} as const;

/** Why a monitor condition cleared: it says so in the reason (NPD's never clear by themselves). */
export const clearedReasons = {
  /** The problem was logged in an earlier boot (/proc/sys/kernel/random/boot_id changed). */
  reboot: 'ClearedByReboot',
  /** Every affected mount is read-write again (/proc/self/mountinfo). */
  remountedReadWrite: 'RemountedReadWrite',
  /** No line matched the rule for its clearAfterSeconds. */
  quietPeriod: 'ClearedAfterQuietPeriod',
} as const;

/** Reasons any agent condition can carry besides its probe's own. */
export const engineReasons = {
  /** Initial state: the check exists and has not found a problem yet. */
  pending: 'NoProblemYet',
  /** The probe itself failed repeatedly; the node's state is unknown (status Unknown). */
  probeError: 'ProbeError',
  /**
   * A /proc or /sys file the probe needs is missing or unreadable: an agent fault, not a node
   * problem, so the condition turns Unknown (never True: nothing may quarantine or repair on it).
   */
  probeReadError: 'ProbeReadError',
} as const;

/**
 * The reasons each probe's condition carries besides `engineReasons`: a problem reason turns
 * it True, a healthy one False. The operator tools (doctor, fleet page) key their advice on them.
 */
export const probeReasons = {
  cpu: { high: 'CPUPressureHigh', normal: 'CPUPressureNormal' },
  memory: { availableLow: 'MemoryAvailableLow', pressureHigh: 'MemoryPressureHigh', normal: 'MemoryPressureNormal' },
  pid: { high: 'PIDPressureHigh', normal: 'PIDPressureNormal' },
  diskIO: { throttled: 'IOThrottled', pressureHigh: 'IOPressureHigh', normal: 'IOPressureNormal', baseline: 'DiskIOBaseline' },
  diskSpace: { spaceLow: 'DiskSpaceLow', inodesLow: 'InodesLow', pathsMissing: 'DiskSpacePathsMissing', normal: 'DiskSpaceNormal' },
  /** A failing DNS check's reason is its name and its outcome: `ClusterDNSServfail` (see dnsCheckNames, dnsOutcomeReasons). */
  dns: { healthy: 'DNSHealthy' },
  kubelet: { unreachable: 'KubeletUnreachable', timeout: 'KubeletTimeout', unhealthy: 'KubeletUnhealthy', healthy: 'KubeletHealthy' },
  konnectivity: {
    apiServerUnreachable: 'APIServerUnreachable',
    nodeUnreachable: 'NodeUnreachableFromAPIServer',
    timeout: 'KonnectivityTimeout',
    tls: 'APIServerTLSError',
    wrongEndpoint: 'KonnectivityWrongEndpoint',
    forbidden: 'KonnectivityForbidden',
    failed: 'KonnectivityPathFailed',
    healthy: 'KonnectivityPathHealthy',
  },
  /** The CRI runtime's Status (AKS's NPD: ContainerRuntimeIsDown); healthy pairs with it. */
  runtime: {
    /** The socket is missing or refuses connections. */
    down: 'ContainerRuntimeIsDown',
    unresponsive: 'ContainerRuntimeUnresponsive',
    /** It answered, but with a gRPC error or a reply that is not a CRI StatusResponse. */
    statusFailed: 'ContainerRuntimeStatusFailed',
    notReady: 'ContainerRuntimeNotReady',
    networkNotReady: 'ContainerRuntimeNetworkNotReady',
    healthy: 'ContainerRuntimeIsUp',
  },
} as const;

/**
 * The built-in DNS checks. A check sent to several resolvers is numbered in resolv.conf's
 * order (`NodeDNS1`, `NodeDNS2`); the operator's own checks carry the names they were given.
 */
export const dnsCheckNames = { node: 'NodeDNS', upstream: 'Upstream', cluster: 'ClusterDNS', apiServer: 'APIServerDNS' } as const;

/** The second half of a failing DNS check's reason, by outcome. */
export const dnsOutcomeReasons = {
  timeout: 'Timeout',
  servfail: 'Servfail',
  nxdomain: 'NXDomain',
  refused: 'Refused',
  otherRcode: 'UnexpectedRcode',
  malformed: 'MalformedReply',
  networkError: 'NetworkError',
  noAnswer: 'NoAnswer',
  publicAnswer: 'PublicAnswer',
  noResolver: 'NoResolver',
} as const;

/** The API server -> kubelet tunnel (AKS's Konnectivity); no such Deployment means direct mode. */
export const konnectivityDeployment = { namespace: 'kube-system', name: 'konnectivity-agent' } as const;

/** Components that write Events and conditions, as `source.component` / `reportingController`. */
export const components = {
  agent: 'nodepulse-agent',
  controller: 'nodepulse-controller',
  /** AKS's own node auto-repair: the platform remediator we defer to. */
  aksAutoRepair: 'aks-auto-repair',
} as const;

/** Annotation, label and taint keys on Nodes (and the controller's Lease) that the programs share. */
export const keys = {
  /** Annotation the controller (agent provider) sets to ask the node's agent to reboot it. */
  rebootRequest: 'nodepulse.io/reboot-request',
  /** Label or annotation that opts a node out of remediation and quarantine. */
  optOut: 'nodepulse.io/remediation',
  /** Annotation holding a node's remediation ladder state (JSON). */
  remediationState: 'nodepulse.io/remediation-state',
  /**
   * Annotation the controller sets (to the time) when a node it has seen Ready first fails,
   * so that any later replica knows the node was healthy once (AKS repairs no node that
   * never was).
   */
  readySeen: 'nodepulse.io/ready-seen',
  /** Label set on a node the ladder gave up on. */
  needsHuman: 'nodepulse.io/needs-human',
  /** NoSchedule taint the controller keeps on a quarantined node. */
  quarantineTaint: 'nodepulse.io/quarantined',
  /** Annotation on the leader Lease that pauses the controller at run time. */
  paused: 'nodepulse.io/paused',
  /** Annotation on the leader Lease holding fleet-wide memory (the storm end). */
  fleetMemory: 'nodepulse.io/fleet-memory',
} as const;

/** Taints others set that the ladder honours (AKS's skip rules). */
export const foreignTaints = {
  /** The cloud provider marks a node whose VM is shut down; the node is not broken, it is off. */
  shutdown: 'node.cloudprovider.kubernetes.io/shutdown',
  /** The cluster autoscaler is removing this node; repairing it would fight the scale-down. */
  toBeDeleted: 'ToBeDeletedByClusterAutoscaler',
} as const;

export type LadderStep = 'reboot' | 'reimage' | 'redeploy';
const stepWords: Record<LadderStep, string> = { reboot: 'Reboot', reimage: 'Reimage', redeploy: 'Redeploy' };

/** AKS auto-repair's event reasons: NodeRebootStart, NodeReimageEnd, NodeRedeployError, ... */
export function stepEventReason(step: LadderStep, phase: 'Start' | 'End' | 'Error'): string {
  return `Node${stepWords[step]}${phase}`;
}

/** The controller's event reasons beyond AKS's step events. */
export const controllerEventReasons = {
  recovered: 'NodeRemediationRecovered',
  needsHuman: 'NodeRemediationNeedsHuman',
  deferred: 'NodeRemediationDeferred',
  skipped: 'NodeRemediationSkipped',
  quarantined: 'NodeQuarantined',
  quarantineLifted: 'NodeQuarantineLifted',
} as const;
