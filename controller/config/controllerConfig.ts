import { z } from 'zod';
import { components, keys } from '../../common/contract.js';
import { loadConfig } from '../../common/config/loadConfig.js';

/**
 * The remediation controller's configuration, validated once at the edge. Every duration is
 * configurable; the defaults reproduce AKS node auto-repair (see docs/domain.md), and the
 * safety settings add what AKS leaves out. An empty file is a working, harmless config: the
 * provider defaults to `dry-run`.
 */
const seconds = z.number().positive().max(7 * 86_400);
const secondsOrZero = z.number().nonnegative().max(7 * 86_400);
const count = z.number().int().min(0).max(1_000_000);
const conditionType = z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/, 'must be a Node condition type, e.g. KonnectivityProblem');
// Label and annotation keys: optional DNS prefix and a name (Kubernetes' qualified-name rule).
const qualifiedKey = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
    'must be a label/annotation key such as nodepulse.io/remediation',
  );

// prefault, not default: zod 4 returns a default as is, so `.default({})` would skip the inner defaults.
const withDefaults = <T extends z.ZodType>(s: T) => s.prefault({} as never);

const agentCondition = z.strictObject({
  type: conditionType,
  /** The condition must stay True this long before the node counts as unhealthy. */
  forSeconds: seconds.default(600),
});

const detection = z.strictObject({
  /** Ready not True on consecutive observations spanning this long: the node is unhealthy. */
  notReadySeconds: seconds.default(600),
  /** No status this long (Ready Unknown, or a heartbeat this old): the node is unhealthy. */
  noStatusSeconds: seconds.default(600),
  /** Remediation starts once a node has been unhealthy this long. */
  remediateAfterSeconds: secondsOrZero.default(300),
  /** Agent conditions that also make a node unhealthy when True for their duration. */
  agentConditions: z.array(agentCondition).default([]),
  /**
   * The agents' heartbeat period (their publish.heartbeatSeconds). An agent condition not
   * re-stated for two of these reads as Unknown: a dead agent's last word drives nothing.
   */
  agentHeartbeatSeconds: seconds.default(300),
});

const recoveryWait = z.strictObject({
  reboot: seconds.default(300),
  reimage: seconds.default(600),
  redeploy: seconds.default(600),
});

const ladder = z.strictObject({
  /** After a step ends, how long the node has to become healthy before the next step. */
  recoveryWaitSeconds: withDefaults(recoveryWait),
  /**
   * Upper bound of one provider call. A step whose end was never recorded (the controller died
   * mid-call) counts as ended this long after it started, so it is never started twice.
   */
  stepTimeoutSeconds: seconds.default(900),
  /**
   * How many times the reboot -> reimage -> redeploy sequence runs in all before a human is
   * needed. AKS says "retried up to 3 times" within one hour; we read it as 3 passes.
   */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /** The whole process, first step to giving up, is bounded by this. */
  overallBoundSeconds: seconds.default(3600),
  /**
   * A node that recovers and fails again within this window continues its ladder (and its
   * overall bound) instead of starting over at reboot; after it, the stored state is cleared.
   */
  flapWindowSeconds: seconds.default(1800),
  /**
   * After a step whose outcome could not be established within its timeout (throttled,
   * another operation in progress, no answer), the same step is tried again after this long;
   * it never counts as run, so the ladder never escalates on it.
   */
  retryDelaySeconds: seconds.default(60),
});

const circuitBreaker = z.strictObject({
  /** Start nothing while more than this share of the counted nodes is unhealthy. */
  maxUnhealthyPercent: z.number().int().min(0).max(100).default(20),
  /** ... or more than this many, whatever the cluster size (unset: no absolute cap). */
  maxUnhealthyCount: count.optional(),
  /**
   * Unhealthy nodes always tolerated, whatever the percentage says, so that a small pool
   * (3 nodes: 20% is 0.6) can still repair one node. Never overrides maxUnhealthyCount.
   */
  minUnhealthyAllowed: count.default(1),
  /**
   * A pool of one node: repair it when it is unhealthy (AKS's rules make no exception for
   * single-node pools). Off: a lone unhealthy node is held like a fleet where every node is
   * unhealthy.
   */
  repairSingleNode: z.boolean().default(true),
});

const safety = z.strictObject({
  circuitBreaker: withDefaults(circuitBreaker),
  /** Nodes with a remediation sequence under way at the same time. */
  maxInFlight: z.number().int().min(1).max(10_000).default(1),
  /** Minimum time between the starts of any two steps, across the fleet. */
  minStartSpacingSeconds: secondsOrZero.default(120),
  /** After the circuit breaker closes again, nothing starts for this long. */
  stormCooldownSeconds: secondsOrZero.default(900),
});

const optOut = z.strictObject({
  /** A node with this label or annotation set to `value` is never remediated nor quarantined. */
  key: qualifiedKey.default(keys.optOut),
  value: z.string().default('disabled'),
});

// An Event's source.component, reportingComponent or reportingInstance; it goes into a field selector, so no ',' or '='.
const eventIdentity = z
  .string()
  .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.:/]*[A-Za-z0-9])?$/, 'must be an event source such as aks-auto-repair (letters, digits, - _ . : /)');
const ownComponents: readonly string[] = [components.agent, components.controller];

/**
 * Other remediators' Events on Nodes, which make us defer to them (controller/platformEvents.ts
 * holds the trust rules). What the sources pin about AKS's events: source `aks-auto-repair`,
 * on the Node object (learn.microsoft.com/azure/aks/node-auto-repair). What they leave open is
 * configurable here, with defaults that a forger in another namespace cannot meet.
 */
const platform = z.strictObject({
  /** Event sources (source.component) of other remediators on Nodes; AKS's own is `aks-auto-repair`. */
  remediatorSources: z
    .array(
      eventIdentity.refine((source) => !ownComponents.includes(source), {
        message: `must not be nodepulse's own component (${ownComponents.join(', ')}): the controller would defer to itself`,
      }),
    )
    .max(16)
    .default([components.aksAutoRepair]),
  /** While such an event is younger than this, we defer to the platform on that node. */
  deferSeconds: seconds.default(3600),
  /**
   * Namespaces whose Events from those sources are trusted. The API server keeps an Event about a
   * cluster-scoped object (a Node) in `default`, or with eventTime set also `kube-system`
   * (pkg/apis/core/validation/events.go); client-go's recorder writes them to `default`.
   */
  trustedNamespaces: z
    .array(z.enum(['default', 'kube-system'], 'must be default or kube-system: the API server keeps Events about Nodes nowhere else'))
    .min(1, 'needs at least one namespace, e.g. [default]')
    .default(['default']),
  /**
   * Refuse a platform Event with no reportingComponent. Off: AKS does not document setting it,
   * and older writers leave it empty. One that is set must equal source.component either way.
   */
  requireReportingComponent: z.boolean().default(false),
  /** reportingInstance values trusted; empty: any (AKS does not document its value). */
  reportingInstances: z.array(eventIdentity).max(64).default([]),
  /** An Event dated further ahead of our clock than this is refused: it would defer longer than deferSeconds. */
  maxClockSkewSeconds: secondsOrZero.max(3600).default(60),
});

const azureProvider = z.strictObject({
  armEndpoint: z.url().default('https://management.azure.com'),
  apiVersion: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}(-preview)?$/, 'must be an ARM api-version such as 2024-07-01')
    .default('2024-07-01'),
  /** `workload-identity` needs clientId, tenantId and federatedTokenFile (set by the AKS webhook). */
  credential: z.enum(['workload-identity', 'managed-identity']).default('workload-identity'),
  authorityHost: z.url().default('https://login.microsoftonline.com'),
  tenantId: z.string().optional(),
  clientId: z.string().optional(),
  federatedTokenFile: z.string().optional(),
  imdsEndpoint: z.url().default('http://169.254.169.254'),
  /** Client id of a user-assigned managed identity; unset means the system-assigned one. */
  managedIdentityClientId: z.string().optional(),
  /** Scope of the ARM token. */
  resource: z.url().default('https://management.azure.com'),
  requestTimeoutSeconds: seconds.default(30),
  /** Polling period of a long-running operation when ARM sends no Retry-After. */
  pollIntervalSeconds: seconds.default(10),
  /** Retries of one read (operation poll, instance view) on 429, 5xx or a network error; an action POST is never re-sent. */
  maxRetries: z.number().int().min(0).max(20).default(5),
  /** A Retry-After longer than this is cut to it, so one step cannot stall the ladder. */
  maxRetryAfterSeconds: seconds.default(120),
});

const agentProvider = z.strictObject({
  /** Annotation on the Node that the agent on that node watches and answers with a reboot. */
  rebootRequestAnnotation: qualifiedKey.default(keys.rebootRequest),
});

const provider = z.strictObject({
  type: z.enum(['dry-run', 'azure', 'agent']).default('dry-run'),
  azure: withDefaults(azureProvider),
  agent: withDefaults(agentProvider),
});

const quarantine = z.strictObject({
  enabled: z.boolean().default(false),
  /** While any of these agent conditions is True on a node, our NoSchedule taint stays on it. */
  conditions: z.array(conditionType).default([]),
  taintKey: qualifiedKey.default(keys.quarantineTaint),
});

const events = z.strictObject({
  /** `source.component` and `reportingComponent` of our Events. */
  reportingComponent: z.string().min(1).default(components.controller),
  /** `reportingInstance`; unset means the pod's hostname. */
  reportingInstance: z.string().optional(),
});

const leaderElection = z.strictObject({
  namespace: z.string().min(1).default('nodepulse'),
  leaseName: z.string().min(1).default('nodepulse-controller'),
  leaseDurationSeconds: seconds.default(15),
  renewDeadlineSeconds: seconds.default(10),
  retryPeriodSeconds: seconds.default(2),
});

const cache = z.strictObject({
  /**
   * The leader decides only while its Node cache is this current: a watch that broke longer
   * ago than this (an API server restart or outage) makes /readyz fail, stops all decisions,
   * and hands the lease back until the cache is current again.
   */
  maxStaleSeconds: seconds.default(30),
  /** Nodes per page of the initial list and every relist (limit + continue): no response holds the whole fleet. */
  listPageSize: z.number().int().min(10).max(5000).default(500),
  /**
   * How the cache is filled at start and on every relist: `watchList`, one streaming watch
   * (sendInitialEvents=true) with paged LISTs as the fallback where the API server refuses it;
   * `list`, paged LISTs only.
   */
  initialSync: z.enum(['watchList', 'list'], 'must be watchList (the streaming list, falling back to paged LISTs) or list (paged LISTs only)').default('watchList'),
});

const metrics = z.strictObject({
  address: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65_535).default(20259),
});

export const controllerConfigSchema = z
  .strictObject({
    kubeconfig: z.string().optional(),
    /** Nothing at all is done while paused. */
    paused: z.boolean().default(false),
    /** The same, set at run time: this annotation set to "true" on the controller's Lease. */
    pauseAnnotation: qualifiedKey.default(keys.paused),
    /** Where a node's remediation state (step, attempt, timestamps) is stored. */
    stateAnnotation: qualifiedKey.default(keys.remediationState),
    /** Set on a node the ladder gave up on, so `kubectl get nodes -l` finds them. */
    needsHumanLabel: qualifiedKey.default(keys.needsHuman),
    /**
     * Label selector of the Nodes this controller looks after (e.g. `agentpool=nodepool1`); the
     * circuit breaker counts only these. Empty: every Node.
     */
    nodeSelector: z
      .string()
      .regex(/^[-A-Za-z0-9_./=!,() ]*$/, 'must be a label selector such as agentpool=nodepool1 or "env in (prod)"')
      .default(''),
    /** Every node is re-evaluated at least this often (Node changes trigger a pass sooner). */
    passIntervalSeconds: seconds.default(10),
    detection: withDefaults(detection),
    ladder: withDefaults(ladder),
    safety: withDefaults(safety),
    optOut: withDefaults(optOut),
    platform: withDefaults(platform),
    provider: withDefaults(provider),
    quarantine: withDefaults(quarantine),
    events: withDefaults(events),
    leaderElection: withDefaults(leaderElection),
    cache: withDefaults(cache),
    metrics: withDefaults(metrics),
  })
  .superRefine((config, ctx) => {
    const election = config.leaderElection;
    if (!(election.retryPeriodSeconds < election.renewDeadlineSeconds && election.renewDeadlineSeconds < election.leaseDurationSeconds)) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaderElection'],
        message:
          'needs retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, so a leader stops acting before its lease can expire',
      });
    }
    const azure = config.provider.azure;
    if (config.provider.type === 'azure' && azure.credential === 'workload-identity') {
      for (const [field, variable] of [
        ['tenantId', 'AZURE_TENANT_ID'],
        ['clientId', 'AZURE_CLIENT_ID'],
        ['federatedTokenFile', 'AZURE_FEDERATED_TOKEN_FILE'],
      ] as const) {
        if (!azure[field]) {
          ctx.addIssue({
            code: 'custom',
            path: ['provider', 'azure', field],
            message: `required for workload identity; set it or ${variable} (the AKS workload identity webhook sets it), or use credential: managed-identity`,
          });
        }
      }
    }
    if (config.quarantine.enabled && config.quarantine.conditions.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['quarantine', 'conditions'],
        message: 'quarantine is enabled but lists no condition types; add e.g. [KonnectivityProblem]',
      });
    }
  });

export type ControllerConfig = z.output<typeof controllerConfigSchema>;
export type DetectionConfig = ControllerConfig['detection'];
export type LadderConfig = ControllerConfig['ladder'];
export type SafetyConfig = ControllerConfig['safety'];
export type CircuitBreakerConfig = SafetyConfig['circuitBreaker'];
export type AzureProviderConfig = ControllerConfig['provider']['azure'];

/** Environment variables set by AKS workload identity, mapped onto the config. */
export const controllerEnvAliases: Record<string, string> = {
  AZURE_CLIENT_ID: 'provider.azure.clientId',
  AZURE_TENANT_ID: 'provider.azure.tenantId',
  AZURE_FEDERATED_TOKEN_FILE: 'provider.azure.federatedTokenFile',
  AZURE_AUTHORITY_HOST: 'provider.azure.authorityHost',
};

/** Reads the controller's config file (or none) with NODEPULSE__ and workload-identity overrides. */
export function loadControllerConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  return loadConfig(controllerConfigSchema, { file, env, aliases: controllerEnvAliases });
}
