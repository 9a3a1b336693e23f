import type { V1Deployment } from '@kubernetes/client-node';
import { deadlineSignal } from '../../common/deadline.js';
import type { ProbesConfig } from '../config/schema.js';
import type { AgentKubeApi } from '../kube/agentKubeApi.js';
import { KubeApiError, tokenUnreadable } from '../../common/kube/kubeClient.js';
import { echoRoute, type KonnectivityEcho } from './konnectivityEcho.js';
import { type Figures, type Probe, type ProbeResult, type Verdict, result } from './probe.js';
import { engineReasons, probeReasons } from '../../common/contract.js';

const reasons = probeReasons.konnectivity;

/** The API client's idle timeout past each request's deadline (see run()). */
const idleTimeoutMarginMs = 1000;

type DeploymentState =
  | { mode: 'konnectivity'; ready: number; desired: number }
  | { mode: 'direct' }
  | { mode: 'unknown'; error: string };

const tlsCodes = /CERT|SELF_SIGNED|TLS|SSL|ERR_TLS|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH/;

/**
 * The seed's step 2 per node. Cheap part: the konnectivity-agent Deployment's readiness
 * (cached; absent means direct mode, e.g. API Server VNet Integration, not a failure). Real
 * part: a request the API server itself must carry back to this pod through its pod proxy,
 * answered only by this agent's nonce.
 */
export class KonnectivityProbe implements Probe {
  readonly name = 'konnectivity';
  readonly intervalMs: number;
  /** The Deployment read and the proxied request, each bounded by timeoutMs: the probe's own timeouts always win over the loop's cancel. */
  readonly sampleTimeoutMs: number;
  private deployment: { state: DeploymentState; at: number } | undefined;

  constructor(
    private readonly config: ProbesConfig['konnectivity'],
    private readonly api: AgentKubeApi,
    private readonly echo: KonnectivityEcho,
    private readonly port: number,
  ) {
    this.intervalMs = config.intervalSeconds * 1000;
    this.sampleTimeoutMs = 2 * config.timeoutMs + 1000;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    const deployment = await this.deploymentState(signal);
    const nonce = this.echo.issue();
    const pathStart = Date.now();
    let outcome: string;
    // A deadline of its own for the whole exchange: the client's timeout only bounds a silent
    // socket, and a path cut mid-connection must still end as a timeout, not as a cancelled sample.
    // That idle timeout is a plain socket timer, which a stalled loop runs before the reply waiting
    // for it: it sits past the deadline so that the stall-tolerant deadline decides.
    const deadline = AbortSignal.any([signal, deadlineSignal(this.config.timeoutMs)]);
    try {
      const body = await this.api.proxyGetPod(
        this.config.podNamespace,
        this.config.podName,
        this.port,
        `${echoRoute}${nonce}`,
        this.config.timeoutMs + idleTimeoutMarginMs,
        deadline,
      );
      outcome = body.trim() === nonce ? 'ok' : 'wrongEndpoint';
    } catch (err) {
      if (signal.aborted) throw err;
      // The agent's own token, not the path: an agent problem (Unknown), not a node problem.
      if (err instanceof KubeApiError && err.reason === tokenUnreadable) {
        const verdict = { healthy: false, reason: engineReasons.probeReadError, message: `${err.message}: the agent cannot authenticate, so the path is not checked (an agent problem, not the node's)` };
        return result(this.name, startedAt, verdict, { outcome: 'tokenUnreadable', ...deploymentFigures(deployment) });
      }
      outcome = deadline.aborted ? 'timeout' : classify(err);
    }
    const latencyMs = Date.now() - pathStart;
    const verdict = this.verdict(outcome, latencyMs, deployment);
    const figures: Figures = { outcome, latencyMs, ...deploymentFigures(deployment) };
    return result(this.name, startedAt, verdict, figures);
  }

  private verdict(outcome: string, latencyMs: number, deployment: DeploymentState): Verdict {
    const agent = describeDeployment(deployment, this.config.deployment);
    const target = `API server -> pod ${this.config.podNamespace}/${this.config.podName}:${this.port}`;
    if (outcome === 'ok') {
      return { healthy: true, reason: reasons.healthy, message: `${target} answered in ${latencyMs}ms; ${agent}` };
    }
    const fix =
      deployment.mode === 'konnectivity'
        ? `; first fix: kubectl rollout restart deploy ${this.config.deployment} -n ${this.config.namespace}`
        : '';
    const what: Record<string, [string, string]> = {
      apiServerUnreachable: [reasons.apiServerUnreachable, 'this node cannot reach the API server (routing, firewall or NVA egress rules)'],
      nodeUnreachable: [reasons.nodeUnreachable, `the API server cannot reach this node (${target})`],
      timeout: [reasons.timeout, `${target} timed out after ${latencyMs}ms`],
      tls: [reasons.tls, 'TLS to the API server failed (CA or certificate problem)'],
      wrongEndpoint: [reasons.wrongEndpoint, `${target} reached an endpoint that does not know this agent's nonce`],
      forbidden: [reasons.forbidden, 'RBAC refuses pods/proxy to this agent: check the nodepulse-agent ClusterRole'],
    };
    const [reason, text] = what[outcome] ?? [reasons.failed, `${target} failed (${outcome})`];
    return { healthy: false, reason, message: `${text}; ${agent}${fix}` };
  }

  private async deploymentState(signal: AbortSignal): Promise<DeploymentState> {
    const now = Date.now();
    if (this.deployment && now - this.deployment.at < this.config.deploymentCacheSeconds * 1000) return this.deployment.state;
    let state: DeploymentState;
    try {
      const d: V1Deployment = await this.api.getDeployment(
        this.config.namespace,
        this.config.deployment,
        AbortSignal.any([signal, deadlineSignal(this.config.timeoutMs)]),
        this.config.timeoutMs + idleTimeoutMarginMs,
      );
      state = { mode: 'konnectivity', ready: numberOr0(d.status?.readyReplicas), desired: numberOr0(d.spec?.replicas ?? 1) };
    } catch (err) {
      if (signal.aborted) throw err;
      state = err instanceof KubeApiError && err.status === 404 ? { mode: 'direct' } : { mode: 'unknown', error: (err as Error).message };
    }
    // An unknown state is not cached: the next sample asks again.
    this.deployment = state.mode === 'unknown' ? undefined : { state, at: now };
    return state;
  }
}

/** Who failed: the node -> API server leg, the API server -> node leg, or neither answered in time. */
function classify(err: unknown): string {
  if (!(err instanceof KubeApiError)) return 'apiServerUnreachable';
  if (err.status === 0) {
    if (tlsCodes.test(err.reason)) return 'tls';
    if (err.reason === 'Timeout') return 'timeout';
    // Refused, reset, no route, no DNS answer for the API server...: the node -> API server leg.
    return 'apiServerUnreachable';
  }
  if (err.status === 403 || err.status === 401) return 'forbidden';
  if (err.status === 404) return 'wrongEndpoint';
  if (/timeout|deadline exceeded/i.test(err.message) || err.status === 504) return 'timeout';
  if (err.status === 502 || err.status === 503 || err.status === 500) return 'nodeUnreachable';
  return `http${err.status}`;
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function describeDeployment(state: DeploymentState, name: string): string {
  switch (state.mode) {
    case 'direct':
      return `no ${name} deployment: direct mode (API server reaches nodes without a tunnel)`;
    case 'konnectivity':
      return `${name} ${state.ready}/${state.desired} ready`;
    case 'unknown':
      return `${name} state unknown (${state.error})`;
  }
}

function deploymentFigures(state: DeploymentState): Figures {
  return state.mode === 'konnectivity'
    ? { mode: state.mode, agentReady: state.ready, agentDesired: state.desired }
    : state.mode === 'direct'
      ? { mode: state.mode }
      : { mode: state.mode, deploymentError: state.error };
}
