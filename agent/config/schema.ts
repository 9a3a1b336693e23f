import { z } from 'zod';
import { keys } from '../../common/contract.js';

/**
 * The agent's configuration, validated once at the edge. Every key has a default so an empty
 * file (or none) is a working standalone config; `profile: azure` adds the AKS checks.
 */
const percent = z.number().min(0).max(100);
const seconds = z.number().positive().max(86_400);

const hysteresis = {
  enabled: z.boolean().default(true),
  intervalSeconds: seconds.default(10),
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
  loadPerCore: z.number().positive().default(4),
});

const memory = z.strictObject({
  ...hysteresis,
  someAvg10Percent: percent.default(40),
  fullAvg10Percent: percent.default(10),
  availablePercent: percent.default(5),
  /** The kubelet evicts at memory.available < 100Mi; warn while there is still room. */
  availableMiB: z.number().nonnegative().default(200),
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
  paths: z.array(z.string().min(1)).default(['/', '/var/lib/kubelet', '/var/lib/containerd']),
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
  intervalSeconds: seconds.default(30),
  timeoutMs: z.number().int().min(50).max(30_000).default(2000),
  /** Checks run as given; when empty, the profile's built-in checks are used. */
  checks: z.array(dnsCheck).default([]),
  /** Built-in generic check: this name through every resolver in resolv.conf. */
  resolvConf: z.string().default('/etc/resolv.conf'),
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
  url: z.url().default('http://127.0.0.1:10248/healthz'),
  timeoutMs: z.number().int().min(50).max(30_000).default(2000),
});

const konnectivity = z.strictObject({
  ...hysteresis,
  intervalSeconds: seconds.default(60),
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  namespace: z.string().default('kube-system'),
  deployment: z.string().default('konnectivity-agent'),
  /** How long the Deployment read is cached; it changes rarely. */
  deploymentCacheSeconds: seconds.default(300),
  /** This agent's own pod, which the API server is asked to reach (downward API POD_NAME / POD_NAMESPACE). */
  podName: z.string().default(''),
  podNamespace: z.string().default('nodepulse'),
});

const server = z.strictObject({
  address: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(20258),
  /** /healthz fails when the probe loop has not completed a round for this long. */
  stallSeconds: seconds.default(120),
});

const publish = z.strictObject({
  enabled: z.boolean().default(false),
  heartbeatSeconds: seconds.default(300),
  /** Per-node jitter of the heartbeat, as a share of the period. */
  heartbeatJitter: z.number().min(0).max(1).default(0.2),
  eventBurst: z.number().int().min(1).default(10),
  eventsPerMinute: z.number().positive().default(6),
  backoffMaxSeconds: seconds.default(60),
});

// prefault, not default: zod 4 returns a default as is, so `.default({})` would skip the inner defaults.
/**
 * The `agent` remediation provider: the controller sets `annotation` on the Node and the agent
 * there runs `command` once per request newer than the host's boot, kured-style.
 */
const reboot = z.strictObject({
  enabled: z.boolean().default(false),
  annotation: z
    .string()
    .regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9][-A-Za-z0-9_.]*$/, 'must be an annotation key such as nodepulse.io/reboot-request')
    .default(keys.rebootRequest),
  /** Runs in the agent's container; with hostPID, nsenter reaches the host's systemd. */
  command: z.array(z.string().min(1)).min(1).default(['nsenter', '--target', '1', '--mount', '--', '/bin/systemctl', 'reboot']),
  /** Requests older than this are ignored (a controller that died long ago). */
  maxRequestAgeSeconds: seconds.default(3600),
});

const withDefaults = <T extends z.ZodType>(s: T) => s.prefault({} as never);

export const agentConfigSchema = z.strictObject({
  profile: z.enum(['generic', 'azure']).default('generic'),
  nodeName: z.string().default(''),
  procRoot: z.string().default('/proc'),
  sysRoot: z.string().default('/sys'),
  kubeconfig: z.string().optional(),
  /** In a pod (no kubeconfig): where the ServiceAccount token and CA are mounted. */
  serviceAccountDir: z.string().default('/var/run/secrets/kubernetes.io/serviceaccount'),
  server: withDefaults(server),
  publish: withDefaults(publish),
  reboot: withDefaults(reboot),
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
    }),
  ),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type ProbesConfig = AgentConfig['probes'];
export type DnsConfig = ProbesConfig['dns'];
export type DnsCheckConfig = z.output<typeof dnsCheck>;
