import { isIP } from 'node:net';
import { z } from 'zod';
import { keys, konnectivityDeployment, ownedConditionTypes, restartConditionTypes, type ProbeName } from '../../common/contract.js';
import { builtinRuleSets, type BuiltinRuleSet } from '../monitors/builtinRules.js';
import type { LogRuleSet } from '../monitors/logRules.js';
import { readPluginFile } from '../monitors/pluginFile.js';
import { RuleFileError, readRuleFile, ruleSetFrom } from '../monitors/ruleFile.js';

/**
 * The agent's configuration, validated once at the edge. Every key has a default so an empty
 * file (or none) is a working standalone config; `profile: azure` adds the AKS checks.
 */
const percent = z.number().min(0).max(100);
const seconds = z.number().positive().max(86_400);
/** Sampling faster than once a second burns CPU (54% of a core at 0.0001 s) and detects nothing sooner. */
const interval = z.number().min(1, 'must be at least 1 (second): sampling faster burns CPU and detects nothing sooner').max(86_400);
const absolutePath = z.string().regex(/^\//, 'must be an absolute path, e.g. /proc');
const ipLiteral = z.string().refine((text) => isIP(text) !== 0, 'must be an IP address (e.g. 127.0.0.1, 0.0.0.0 or ::1), not a host name');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL, e.g. http://127.0.0.1:10248/healthz' });
const timeout = (min: number, max: number, fallback: number) => z.number().int().min(min).max(max).default(fallback);

const hysteresis = {
  enabled: z.boolean().default(true),
  intervalSeconds: interval.default(10),
  /** Consecutive bad samples before the condition turns True. */
  failureThreshold: z.number().int().min(1).max(1000).default(3),
  /** Consecutive good samples before it turns False again. */
  recoveryThreshold: z.number().int().min(1).max(1000).default(2),
};

const cpu = z.strictObject({
  ...hysteresis,
  someAvg10Percent: percent.default(75),
  /** Used only where the kernel has no PSI. */
  utilisationPercent: percent.default(95),
  loadPerCore: z.number().positive().max(1000).default(4),
});

const memory = z.strictObject({
  ...hysteresis,
  someAvg10Percent: percent.default(40),
  fullAvg10Percent: percent.default(10),
  availablePercent: percent.default(5),
  /** The kubelet evicts at memory.available < 100Mi; warn while there is still room. */
  availableMiB: z
    .number()
    .nonnegative()
    .max(65_536, 'must be at most 65536 (64 GiB); a floor that large belongs in availablePercent')
    .default(200),
});

const pid = z.strictObject({
  ...hysteresis,
  usedPercent: percent.default(90),
});

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

const ioDevice = z.strictObject({
  name: z.string().min(1),
  iopsCap: z.number().positive().optional(),
  mbpsCap: z.number().positive().optional(),
});

const diskIO = z.strictObject({
  ...hysteresis,
  someAvg10Percent: percent.default(50),
  fullAvg10Percent: percent.default(25),
  /** A device is at its cap when it runs at this share of its provisioned IOPS or MB/s. */
  capUsePercent: percent.default(95),
  devices: z.array(ioDevice).default([]),
  /** Block devices that are never sampled (regular expression on the kernel name). */
  ignoreDevices: z
    .string()
    .refine(isRegExp, 'must be a valid regular expression, e.g. ^(loop|ram)\\d*')
    .default('^(loop|ram|sr|zram|fd)\\d*|^dm-'),
});

const diskSpace = z.strictObject({
  ...hysteresis,
  failureThreshold: z.number().int().min(1).max(1000).default(1),
  /** The OS disk, the kubelet's and the container runtime's filesystems; missing ones are noted and skipped. */
  paths: z.array(absolutePath).default(['/', '/var/lib/kubelet', '/var/lib/containerd']),
  usedPercent: percent.default(90),
  inodesUsedPercent: percent.default(90),
});

const dnsCheck = z.strictObject({
  /** CamelCase word that starts every reason of this check, e.g. `ClusterDNS`. */
  name: z.string().regex(/^[A-Z][A-Za-z0-9]*$/, 'must be CamelCase, e.g. ClusterDNS'),
  /** `host`, `host:port` or `[v6]:port`. */
  server: z.string().min(1),
  query: z.string().min(1),
  type: z.enum(['A', 'AAAA', 'NS', 'SOA']).default('A'),
  /** `private`: every address must be RFC 1918 / ULA or inside `privateCidrs`. */
  expect: z.enum(['answer', 'private']).default('answer'),
});

const dns = z.strictObject({
  ...hysteresis,
  intervalSeconds: interval.default(30),
  /** Per query, the TCP retry included; below the interval (timeoutBelowInterval). */
  timeoutMs: timeout(50, 30_000, 2000),
  /** Checks run as given; when empty, the profile's built-in checks are used. */
  checks: z.array(dnsCheck).default([]),
  /** Built-in generic check: this name through every resolver in resolv.conf. */
  resolvConf: absolutePath.default('/etc/resolv.conf'),
  defaultQuery: z.string().default('.'),
  azureDNS: z.string().default('168.63.129.16'),
  upstreamQuery: z.string().default('microsoft.com'),
  clusterDNS: z.string().default('10.0.0.10'),
  clusterDomain: z.string().default('cluster.local'),
  /** The API server FQDN; when unset, the FQDN check is skipped. */
  apiServerFQDN: z.string().optional(),
  privateCluster: z.boolean().default(false),
  privateCidrs: z.array(z.string()).default([]),
});

const kubelet = z.strictObject({
  ...hysteresis,
  url: httpUrl.default('http://127.0.0.1:10248/healthz'),
  timeoutMs: timeout(50, 30_000, 2000),
});

/** sun_path holds 108 bytes with the terminating NUL: a longer path cannot be connected to. */
const unixSocketPath = absolutePath.max(107, 'must be at most 107 bytes: a unix socket path longer than that cannot be connected to; mount the socket at a shorter path');

/**
 * The container runtime over CRI. Off by default: it needs the runtime's socket mounted into
 * the agent's pod (a read-only hostPath), which a DaemonSet must ask for.
 */
const runtime = z.strictObject({
  ...hysteresis,
  enabled: z.boolean().default(false),
  socketPath: unixSocketPath.default('/run/containerd/containerd.sock'),
  /** The whole Status and Version exchange; below the interval (timeoutBelowInterval). */
  timeoutMs: timeout(100, 60_000, 5000),
});

const konnectivity = z.strictObject({
  ...hysteresis,
  intervalSeconds: interval.default(60),
  timeoutMs: timeout(100, 60_000, 10_000),
  namespace: z.string().default(konnectivityDeployment.namespace),
  deployment: z.string().default(konnectivityDeployment.name),
  /** How long the Deployment read is cached; it changes rarely. */
  deploymentCacheSeconds: seconds.default(300),
  /** This agent's own pod, which the API server is asked to reach (downward API POD_NAME / POD_NAMESPACE). */
  podName: z.string().default(''),
  podNamespace: z.string().default('nodepulse'),
});

const server = z
  .strictObject({
    /** Everything the endpoint serves. */
    address: ipLiteral.default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(20258),
    /**
     * A second listener on the same port with only what others must reach (/healthz, /readyz,
     * /metrics, the konnectivity echo): the pod's IP, from POD_IP (downward API status.podIP).
     */
    podAddress: ipLiteral.optional(),
    /** /healthz fails when no probe has completed a sample for this long (see stallCoversIntervals). */
    stallSeconds: seconds.default(120),
  })
  .superRefine((server, ctx) => {
    if (server.podAddress === undefined) return;
    if (isUnspecified(server.podAddress)) {
      ctx.addIssue({ code: 'custom', path: ['podAddress'], message: `${server.podAddress} is every address; give the pod's own IP (status.podIP)` });
    } else if (isUnspecified(server.address)) {
      ctx.addIssue({
        code: 'custom',
        path: ['podAddress'],
        message: `not needed: server.address ${server.address} already serves every address; set server.address to 127.0.0.1 to keep conditions, metrics and the stream local, or unset podAddress (POD_IP)`,
      });
    } else if (server.podAddress === server.address) {
      ctx.addIssue({ code: 'custom', path: ['podAddress'], message: `is server.address too; give the pod's IP and keep server.address at 127.0.0.1` });
    }
  });

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || /^[0:]+$/.test(address);
}

const publish = z.strictObject({
  enabled: z.boolean().default(false),
  heartbeatSeconds: z.number().min(1).max(86_400).default(300),
  /** Per-node jitter of the heartbeat, as a share of the period. */
  heartbeatJitter: z.number().min(0).max(1).default(0.2),
  eventBurst: z.number().int().min(1).max(1000).default(10),
  eventsPerMinute: z.number().positive().max(600).default(6),
  backoffMaxSeconds: z.number().min(1).max(3600).default(60),
});

// prefault, not default: zod 4 returns a default as is, so `.default({})` would skip the inner defaults.
/**
 * The `agent` remediation provider: the controller sets `annotation` on the Node and the agent
 * there runs `command` when its value is the host's current boot ID, kured-style.
 */
const reboot = z.strictObject({
  enabled: z.boolean().default(false),
  annotation: z
    .string()
    .regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9][-A-Za-z0-9_.]*$/, 'must be an annotation key such as nodepulse.io/reboot-request')
    .default(keys.rebootRequest),
  /** Runs in the agent's container; with hostPID, nsenter reaches the host's systemd. */
  command: z.array(z.string().min(1)).min(1).default(['nsenter', '--target', '1', '--mount', '--', '/bin/systemctl', 'reboot']),
});

const withDefaults = <T extends z.ZodType>(s: T) => s.prefault({} as never);

/**
 * NPD's kernel monitor: /dev/kmsg through rule sets in NPD's rule-file format. Off in the
 * embedded standalone defaults (a laptop's kernel log is no node's), on in the manifests.
 */
const kernelMonitor = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** The kernel log; a test points it at a fixture file where it cannot write the real one. */
    kmsgPath: absolutePath.default('/dev/kmsg'),
    /** Built-in rule sets: NPD's kernel-monitor.json and readonly-monitor.json, and NVIDIA GPU Xid errors. */
    builtin: z.array(z.enum(Object.keys(builtinRuleSets) as [BuiltinRuleSet, ...BuiltinRuleSet[]])).default(['kernel', 'readonly', 'gpu']),
    /** NPD system-log-monitor files (JSON), read as they are, e.g. /etc/npd/kernel-monitor.json. */
    ruleFiles: z.array(absolutePath).default([]),
    /** Checked for ReadonlyFilesystem when its line names no mounted device; empty: probes.diskSpace.paths. */
    readonlyPaths: z.array(absolutePath).default([]),
    /** How often a True ReadonlyFilesystem looks at the mounts for read-write again. */
    mountCheckSeconds: interval.default(10),
  })
  .transform((kernel, ctx) => ({ ...kernel, ruleSets: kernel.enabled ? resolveRuleSets(kernel, ctx) : [] }));

/** The rule sets to run, each validated and its patterns translated; problems are config issues with the file named. */
function resolveRuleSets(kernel: { builtin: BuiltinRuleSet[]; ruleFiles: string[] }, ctx: z.RefinementCtx): LogRuleSet[] {
  const sets: LogRuleSet[] = [];
  const load = (path: (string | number)[], origin: string, read: () => LogRuleSet) => {
    const set = fromFile(ctx, path, origin, read);
    if (set) sets.push(set);
  };
  for (const name of new Set(kernel.builtin)) load(['builtin'], `built-in ${name}`, () => ruleSetFrom(builtinRuleSets[name], `built-in ${name}`));
  kernel.ruleFiles.forEach((file, i) => load(['ruleFiles', i], file, () => readRuleFile(file)));
  const owner = new Map<string, string>();
  for (const set of sets) {
    for (const condition of set.conditions) {
      const other = owner.get(condition.type) ?? (ownedConditionTypes.includes(condition.type as (typeof ownedConditionTypes)[number]) ? 'a probe' : undefined);
      if (other) {
        ctx.addIssue({ code: 'custom', path: ['ruleFiles'], message: `${set.origin}: condition ${condition.type} is already set by ${other}; a condition has one owner (drop the built-in set or rename it)` });
      }
      owner.set(condition.type, set.origin);
    }
  }
  return sets;
}

/** A rule or plugin file read into its set, or each of its problems a config issue naming the file. */
function fromFile<T>(ctx: z.RefinementCtx, path: (string | number)[], origin: string, read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof RuleFileError)) throw err;
    for (const issue of err.issues) ctx.addIssue({ code: 'custom', path, message: `${origin}: ${issue}` });
    return undefined;
  }
}

/**
 * NPD's FrequentKubeletRestart / FrequentContainerdRestart, from process start times in /proc
 * (NPD counts journal lines: 5 starts in 20 min). A process name is /proc/<pid>/comm; empty
 * switches that one off.
 */
const restarts = z.strictObject({
  enabled: z.boolean().default(false),
  intervalSeconds: interval.default(5),
  windowSeconds: z.number().min(60).max(86_400).default(1200),
  count: z.number().int().min(2).max(1000).default(5),
  kubeletProcess: z.string().max(15, 'must be at most 15 characters: the kernel keeps no more of a process name').default('kubelet'),
  containerdProcess: z.string().max(15, 'must be at most 15 characters: the kernel keeps no more of a process name').default('containerd'),
});

/**
 * NPD custom plugin monitors: its custom-plugin-monitor files (JSON) run as they are. Off by
 * default: every rule runs an operator's program as the agent, each interval.
 */
const customPlugins = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** NPD custom-plugin-monitor files, e.g. /config/custom-plugin-monitor.json. */
    files: z.array(absolutePath).default([]),
    /**
     * Relative plugin paths resolve here and plugins run here. NPD's image sets no WORKDIR, so
     * its `./config/plugin/check_ntp.sh` is /config/plugin/check_ntp.sh.
     */
    workingDir: absolutePath.default('/'),
  })
  .transform((plugins, ctx) => ({
    ...plugins,
    sets: plugins.enabled ? plugins.files.flatMap((file, i) => fromFile(ctx, ['files', i], file, () => readPluginFile(file, plugins.workingDir)) ?? []) : [],
  }));

const monitors = z
  .strictObject({
    kernel: withDefaults(kernelMonitor),
    restarts: withDefaults(restarts),
    customPlugins: withDefaults(customPlugins),
  })
  .superRefine(pluginConditionsOwned);

/** A plugin file's condition has one owner: not a probe, a rule set, the restart monitor or another file. */
function pluginConditionsOwned(m: { kernel: { ruleSets: LogRuleSet[] }; restarts: { enabled: boolean }; customPlugins: z.output<typeof customPlugins> }, ctx: z.RefinementCtx): void {
  const owner = new Map<string, string>(ownedConditionTypes.map((type) => [type, 'a probe']));
  for (const set of m.kernel.ruleSets) for (const condition of set.conditions) owner.set(condition.type, set.origin);
  if (m.restarts.enabled) for (const type of Object.values(restartConditionTypes)) owner.set(type, 'the restart monitor');
  for (const set of m.customPlugins.sets) {
    for (const condition of set.conditions) {
      const other = owner.get(condition.type);
      if (other) {
        const path = ['customPlugins', 'files', m.customPlugins.files.indexOf(set.origin)];
        ctx.addIssue({ code: 'custom', path, message: `${set.origin}: condition ${condition.type} is already set by ${other}; a condition has one owner (rename it in one of them, or drop one)` });
      }
      owner.set(condition.type, set.origin);
    }
  }
}

/**
 * The user the agent becomes once it has opened what needs root (the kernel log). The DaemonSet
 * runs it privileged as root only because no Pod field lets a container through the device
 * cgroup to /dev/kmsg; after the open it holds no capability. null: stay as started (the
 * agent-reboot overlay, whose nsenter needs root).
 */
const uid = z.number().int().min(0).max(4_294_967_294);
const security = z
  .strictObject({
    runAsUser: uid.nullable().default(null),
    /** Default: runAsUser. */
    runAsGroup: uid.nullable().default(null),
    /** Kept as supplementary groups, e.g. the container runtime socket's group (connecting to it takes write access). */
    supplementaryGroups: z.array(uid).max(32).default([]),
  })
  .superRefine((s, ctx) => {
    if (s.runAsUser === 0) ctx.addIssue({ code: 'custom', path: ['runAsUser'], message: 'must not be 0: set null to keep running as root' });
    if (s.runAsUser === null && (s.runAsGroup !== null || s.supplementaryGroups.length > 0)) {
      ctx.addIssue({ code: 'custom', path: ['runAsUser'], message: 'is null, so runAsGroup and supplementaryGroups would not apply: set runAsUser, or drop them' });
    }
  });

export const agentConfigSchema = z
  .strictObject({
    profile: z.enum(['generic', 'azure']).default('generic'),
    nodeName: z.string().default(''),
    procRoot: absolutePath.default('/proc'),
    sysRoot: absolutePath.default('/sys'),
    kubeconfig: z.string().min(1).optional(),
    /** In a pod (no kubeconfig): where the ServiceAccount token and CA are mounted. */
    serviceAccountDir: absolutePath.default('/var/run/secrets/kubernetes.io/serviceaccount'),
    server: withDefaults(server),
    publish: withDefaults(publish),
    reboot: withDefaults(reboot),
    security: withDefaults(security),
    monitors: withDefaults(monitors),
    probes: withDefaults(
      z.strictObject({
        cpu: withDefaults(cpu),
        memory: withDefaults(memory),
        pid: withDefaults(pid),
        diskIO: withDefaults(diskIO),
        diskSpace: withDefaults(diskSpace),
        dns: withDefaults(dns),
        kubelet: withDefaults(kubelet),
        konnectivity: withDefaults(konnectivity),
        runtime: withDefaults(runtime),
      }),
    ),
  })
  .superRefine((config, ctx) => {
    timeoutBelowInterval(config, ctx);
    stallCoversIntervals(config, ctx);
  });

/** Probes with their own per-check timeout. */
const timedProbes = ['dns', 'kubelet', 'konnectivity', 'runtime'] as const;

/**
 * A check's timeout must end before the next sample is due: otherwise a slow target turns
 * every sample into a cancelled one instead of a `<Check>Timeout` with figures.
 */
function timeoutBelowInterval(config: z.output<typeof agentConfigSchema>, ctx: z.RefinementCtx): void {
  for (const name of timedProbes) {
    const probe = config.probes[name];
    if (!probe.enabled || probe.timeoutMs < probe.intervalSeconds * 1000) continue;
    ctx.addIssue({
      code: 'custom',
      path: ['probes', name, 'timeoutMs'],
      message: `${probe.timeoutMs} ms is not below probes.${name}.intervalSeconds (${probe.intervalSeconds} s); lower the timeout or sample less often`,
    });
  }
}

/**
 * /healthz fails when no probe has completed for stallSeconds. Samples of one probe can be up
 * to interval + timeout < 2 intervals apart, so anything under two intervals of the slowest
 * probe that runs fails a healthy agent's liveness probe (and restarts it, in a pod).
 */
function stallCoversIntervals(config: z.output<typeof agentConfigSchema>, ctx: z.RefinementCtx): void {
  const running = (Object.entries(config.probes) as Array<[ProbeName, { enabled: boolean; intervalSeconds: number }]>).filter(
    // konnectivity runs only when publishing (standalone skips it).
    ([name, probe]) => probe.enabled && (name !== 'konnectivity' || config.publish.enabled),
  );
  const slowest = running.reduce<[ProbeName, number] | undefined>(
    (worst, [name, probe]) => (worst && worst[1] >= probe.intervalSeconds ? worst : [name, probe.intervalSeconds]),
    undefined,
  );
  if (!slowest || config.server.stallSeconds >= 2 * slowest[1]) return;
  ctx.addIssue({
    code: 'custom',
    path: ['server', 'stallSeconds'],
    message: `${config.server.stallSeconds} s is under two intervals of the slowest probe (probes.${slowest[0]}.intervalSeconds ${slowest[1]} s), so /healthz would fail while the agent works; use at least ${2 * slowest[1]}`,
  });
}

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type ProbesConfig = AgentConfig['probes'];
export type DnsConfig = ProbesConfig['dns'];
export type DnsCheckConfig = z.output<typeof dnsCheck>;
export type KernelMonitorConfig = AgentConfig['monitors']['kernel'];
