import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const echoRoute = '/konnectivity/echo/';

/**
 * The far end of the konnectivity path probe: nonces this agent issued and the route that
 * answers them. Only this agent knows its outstanding nonces, so an answer proves the API
 * server reached this very pod, not some other endpoint.
 */
export class KonnectivityEcho {
  private readonly outstanding = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  issue(now = Date.now()): string {
    for (const [nonce, expires] of this.outstanding) if (expires < now) this.outstanding.delete(nonce);
    const nonce = randomBytes(16).toString('hex');
    this.outstanding.set(nonce, now + this.ttlMs);
    return nonce;
  }

  /** Handler for `${echoRoute}<nonce>`: 200 with the nonce once, 404 for anything unknown. */
  readonly handle = (_req: IncomingMessage, res: ServerResponse, nonce: string): void => {
    const expires = this.outstanding.get(nonce);
    const known = /^[0-9a-f]{32}$/.test(nonce) && expires !== undefined && expires >= Date.now();
    this.outstanding.delete(nonce);
    res.writeHead(known ? 200 : 404, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
    res.end(known ? nonce : 'unknown nonce');
  };
}
