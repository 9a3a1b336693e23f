import { get as httpsGet } from 'node:https';
import { setDeadline } from '../../common/deadline.js';
import { http } from '../../common/nodeHttp.js';
import type { ProbesConfig } from '../config/schema.js';
import { round } from './figureFormat.js';
import { type Probe, type ProbeResult, type Verdict, result } from './probe.js';
import { probeReasons } from '../../common/contract.js';

const reasons = probeReasons.kubelet;

/** The kubelet answers `ok`; anything longer than this is not a healthz body worth keeping. */
const BODY_LIMIT_BYTES = 1024;

class HealthzTimeout extends Error {
  override name = 'TimeoutError';
}

/**
 * GET with node:http(s), reading at most `limit` bytes of the body so a misbehaving endpoint
 * cannot flood the agent. Not fetch: loading undici costs the agent ~3 MiB of memory on every
 * node for one request every few seconds. Redirects are not followed (never off the node).
 */
function getBounded(url: URL, timeoutMs: number, signal: AbortSignal, limit: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let late: HealthzTimeout | undefined;
    const get = url.protocol === 'https:' ? httpsGet : http.get;
    const req = get(url, { signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= limit) res.destroy();
      });
      const done = () =>
        late ? reject(late) : resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, limit).toString('utf8') });
      res.on('end', done);
      res.on('close', done);
      res.on('error', () => done());
    });
    // A deadline for the whole exchange, not an idle timeout: a kubelet dripping bytes is late too.
    const deadline = setDeadline(() => {
      late = new HealthzTimeout(`no answer within ${timeoutMs} ms`);
      req.destroy(late);
    }, timeoutMs);
    req.on('close', () => deadline.clear());
    req.on('error', reject);
  });
}

function networkErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
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
  /** Above the request's own timeout, so a slow kubelet reads as KubeletTimeout, not ProbeError. */
  readonly sampleTimeoutMs: number;

  constructor(private readonly config: ProbesConfig['kubelet']) {
    this.intervalMs = config.intervalSeconds * 1000;
    this.sampleTimeoutMs = config.timeoutMs + 1000;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    const started = performance.now();
    const { url, timeoutMs } = this.config;
    const latency = () => round(performance.now() - started, 1);
    let verdict: Verdict;
    let status: number | null = null;
    try {
      const response = await getBounded(new URL(url), timeoutMs, signal, BODY_LIMIT_BYTES);
      status = response.status;
      const body = response.body;
      if (status === 200 && body.trim() === 'ok') {
        verdict = { healthy: true, reason: reasons.healthy, message: `${url} answered ok in ${latency()} ms` };
      } else {
        verdict = {
          healthy: false,
          reason: reasons.unhealthy,
          message: `${url} answered HTTP ${status} with body ${quote(body)} in ${latency()} ms, expected 200 "ok"`,
        };
      }
    } catch (err) {
      // The loop cancelling this sample is not a verdict on the kubelet.
      if (signal.aborted) throw signal.reason;
      if ((err as Error).name === 'TimeoutError') {
        verdict = { healthy: false, reason: reasons.timeout, message: `${url} did not answer within ${timeoutMs} ms` };
      } else {
        const code = networkErrorCode(err);
        const detail = code ?? (err as Error).message;
        verdict = { healthy: false, reason: reasons.unreachable, message: `${url} is unreachable: ${detail}` };
      }
    }
    return result(this.name, startedAt, verdict, { url, status, latencyMs: latency() });
  }
}
