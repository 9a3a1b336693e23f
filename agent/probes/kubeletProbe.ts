import type { ProbesConfig } from '../config/schema.js';
import { round } from './figureFormat.js';
import { type Probe, type ProbeResult, type Verdict, result } from './probe.js';

/** The kubelet answers `ok`; anything longer than this is not a healthz body worth keeping. */
const BODY_LIMIT_BYTES = 1024;

/** Reads at most `limit` bytes of the body, so a misbehaving endpoint cannot flood the agent. */
async function readBoundedText(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

function networkErrorCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/** A body quoted for a one-line message: single line, short. */
function quote(body: string): string {
  const line = body.trim().replace(/\s+/g, ' ');
  return JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}...` : line);
}

/** Kubelet health: GET its healthz endpoint (http://127.0.0.1:10248/healthz by default). */
export class KubeletProbe implements Probe {
  readonly name = 'kubelet';
  readonly intervalMs: number;

  constructor(private readonly config: ProbesConfig['kubelet']) {
    this.intervalMs = config.intervalSeconds * 1000;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    const started = performance.now();
    const { url, timeoutMs } = this.config;
    const latency = () => round(performance.now() - started, 1);
    let verdict: Verdict;
    let status: number | null = null;
    try {
      const response = await fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        // A healthz that redirects elsewhere is not healthy; never follow it off the node.
        redirect: 'manual',
      });
      status = response.status;
      const body = await readBoundedText(response, BODY_LIMIT_BYTES);
      if (status === 200 && body.trim() === 'ok') {
        verdict = { healthy: true, reason: 'KubeletHealthy', message: `${url} answered ok in ${latency()} ms` };
      } else {
        verdict = {
          healthy: false,
          reason: 'KubeletUnhealthy',
          message: `${url} answered HTTP ${status} with body ${quote(body)} in ${latency()} ms, expected 200 "ok"`,
        };
      }
    } catch (err) {
      // The loop cancelling this sample is not a verdict on the kubelet.
      if (signal.aborted) throw signal.reason;
      if ((err as Error).name === 'TimeoutError') {
        verdict = { healthy: false, reason: 'KubeletTimeout', message: `${url} did not answer within ${timeoutMs} ms` };
      } else {
        const code = networkErrorCode(err);
        const detail = code ?? (err as Error).message;
        verdict = { healthy: false, reason: 'KubeletUnreachable', message: `${url} is unreachable: ${detail}` };
      }
    }
    return result(this.name, startedAt, verdict, { url, status, latencyMs: latency() });
  }
}
