/**
 * Exponential backoff with full jitter (AWS architecture blog's "full jitter"): thousands of
 * agents that lost the API server at once do not come back in lockstep.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  get failures(): number {
    return this.attempt;
  }

  /** Delay before the next try; a server's Retry-After is honoured as a floor. */
  next(retryAfterSeconds?: number): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    const jittered = Math.round(this.random() * ceiling);
    return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
  }

  reset(): void {
    this.attempt = 0;
  }
}
