import type { ProbesConfig } from '../config/schema.js';
import { engineReasons, probeReasons } from '../../common/contract.js';
import {
  type RuntimeCondition,
  type RuntimeVersion,
  criMethods,
  decodeStatusResponse,
  decodeVersionResponse,
  encodeStatusRequest,
  encodeVersionRequest,
} from './criMessages.js';
import { round } from './figureFormat.js';
import { GRPC_DEADLINE_EXCEEDED, GrpcDeadlineError, GrpcStatusError, GrpcUnixClient } from './grpcUnixClient.js';
import { type Figures, type Probe, type ProbeResult, type Verdict, result } from './probe.js';

const reasons = probeReasons.runtime;

/** A StatusResponse without its info map (not verbose) is well under this; a larger reply is refused. */
const MAX_REPLY_BYTES = 64 * 1024;

/** The two conditions the CRI requires of every runtime (the kubelet reads the same two). */
const RUNTIME_READY = 'RuntimeReady';
const NETWORK_READY = 'NetworkReady';

/** Connection errors that mean nothing serves the socket; anything else there is the agent's. */
const downErrors: Record<string, string> = {
  ENOENT: 'no such socket: the runtime is not running, or its socket is not mounted into the agent',
  ECONNREFUSED: 'nothing listens on it: the runtime is not running',
  ECONNRESET: 'the runtime closed the connection',
  ENOTSOCK: 'the path is not a socket',
};
const permissionErrors = new Set(['EACCES', 'EPERM']);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function describe(condition: RuntimeCondition | undefined, type: string): string {
  if (!condition) return `did not report ${type}`;
  const why = [condition.reason, condition.message].filter((part) => part !== '').join(': ');
  return `${type}=${condition.status}${why ? ` (${why})` : ''}`;
}

/** The verdict on a runtime that answered its Status. */
function statusVerdict(socketPath: string, conditions: RuntimeCondition[], version: RuntimeVersion, latencyMs: number): Verdict {
  const runtimeReady = conditions.find((c) => c.type === RUNTIME_READY);
  const networkReady = conditions.find((c) => c.type === NETWORK_READY);
  const runtime = `${version.runtimeName || 'the runtime'} ${version.runtimeVersion}`.trim();
  const summary = `${describe(runtimeReady, RUNTIME_READY)}, ${describe(networkReady, NETWORK_READY)}; ${runtime} at ${socketPath} answered in ${latencyMs} ms`;
  if (!runtimeReady?.status) return { healthy: false, reason: reasons.notReady, message: summary };
  // A problem: the kubelet turns NetworkReady=false into node NotReady ("network plugin not ready") as NPD's users see it; its own reason says which half failed.
  if (!networkReady?.status) return { healthy: false, reason: reasons.networkNotReady, message: summary };
  return { healthy: true, reason: reasons.healthy, message: summary };
}

/**
 * Container runtime health: the CRI's RuntimeService/Status (RuntimeReady, NetworkReady) and
 * Version over the runtime's unix socket (containerd's /run/containerd/containerd.sock by
 * default), within one deadline.
 */
export class RuntimeProbe implements Probe {
  readonly name = 'runtime';
  readonly intervalMs: number;
  /** Above the call's own deadline, so a stalled runtime reads as ContainerRuntimeUnresponsive, not ProbeError. */
  readonly sampleTimeoutMs: number;
  private readonly client: GrpcUnixClient;

  constructor(private readonly config: ProbesConfig['runtime']) {
    this.intervalMs = config.intervalSeconds * 1000;
    this.sampleTimeoutMs = config.timeoutMs + 1000;
    this.client = new GrpcUnixClient(config.socketPath);
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    const started = performance.now();
    const { socketPath, timeoutMs } = this.config;
    const latency = () => round(performance.now() - started, 1);
    const figures: Figures = { socketPath, latencyMs: null, runtimeName: null, runtimeVersion: null, runtimeApiVersion: null, runtimeReady: null, networkReady: null };
    let verdict: Verdict;
    try {
      const options = { timeoutMs, signal, maxReplyBytes: MAX_REPLY_BYTES };
      const [status, version] = await Promise.all([
        this.client.unary(criMethods.status, encodeStatusRequest(), options),
        this.client.unary(criMethods.version, encodeVersionRequest(), options),
      ]);
      const conditions = decodeStatusResponse(status);
      const runtimeVersion = decodeVersionResponse(version);
      Object.assign(figures, {
        latencyMs: latency(),
        runtimeName: runtimeVersion.runtimeName,
        runtimeVersion: runtimeVersion.runtimeVersion,
        runtimeApiVersion: runtimeVersion.runtimeApiVersion,
        runtimeReady: conditions.find((c) => c.type === RUNTIME_READY)?.status ?? null,
        networkReady: conditions.find((c) => c.type === NETWORK_READY)?.status ?? null,
      });
      verdict = statusVerdict(socketPath, conditions, runtimeVersion, latency());
    } catch (err) {
      // The loop cancelling this sample is not a verdict on the runtime.
      if (signal.aborted) throw signal.reason;
      figures.latencyMs = latency();
      verdict = failureVerdict(socketPath, err);
    }
    return result(this.name, startedAt, verdict, figures);
  }
}

function failureVerdict(socketPath: string, err: unknown): Verdict {
  if (err instanceof GrpcDeadlineError || (err instanceof GrpcStatusError && err.code === GRPC_DEADLINE_EXCEEDED)) {
    return { healthy: false, reason: reasons.unresponsive, message: `the runtime at ${socketPath} is unresponsive: ${(err as Error).message}` };
  }
  const code = errorCode(err);
  if (code && permissionErrors.has(code)) {
    return {
      healthy: false,
      reason: engineReasons.probeReadError,
      message: `the agent may not connect to ${socketPath} (${code}): keep the socket's group in security.supplementaryGroups (containerd's socket is root:root 0660: group 0)`,
    };
  }
  if (code && code in downErrors) return { healthy: false, reason: reasons.down, message: `cannot connect to ${socketPath}: ${code} (${downErrors[code]})` };
  return { healthy: false, reason: reasons.statusFailed, message: `the runtime at ${socketPath} gave no usable status: ${(err as Error).message}` };
}
