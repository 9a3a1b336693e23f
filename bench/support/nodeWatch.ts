import { Watch, type KubeConfig, type V1Node } from '@kubernetes/client-node';

interface Waiter {
  test: (node: V1Node) => boolean;
  resolve: (observedAt: number) => void;
}

/**
 * Watches one Node on the API server and tells when it first matches a test, with the time
 * the watch event arrived: what a dashboard or controller watching the API would see.
 */
export class NodeWatch {
  private latest: V1Node | undefined;
  private waiters: Waiter[] = [];
  private abort: AbortController | undefined;
  private stopped = false;
  private onFirstEvent: () => void = () => {};

  private constructor(
    private readonly config: KubeConfig,
    readonly nodeName: string,
  ) {}

  static async start(config: KubeConfig, nodeName: string): Promise<NodeWatch> {
    const watch = new NodeWatch(config, nodeName);
    await watch.connect();
    return watch;
  }

  get node(): V1Node | undefined {
    return this.latest;
  }

  /** Resolves with the arrival time of the first event whose Node passes `test` (now, if the latest already does). */
  until(what: string, test: (node: V1Node) => boolean, timeoutMs: number): Promise<number> {
    if (this.latest && test(this.latest)) return Promise.resolve(Date.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.nodeName}: not ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        test,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Waits for a condition of this Node to show `status`. */
  untilCondition(type: string, status: string, timeoutMs: number): Promise<number> {
    return this.until(`${type}=${status}`, (node) => node.status?.conditions?.find((c) => c.type === type)?.status === status, timeoutMs);
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private async connect(): Promise<void> {
    const ready = new Promise<void>((resolve) => {
      this.onFirstEvent = resolve;
    });
    this.abort = await new Watch(this.config).watch(
      '/api/v1/nodes',
      { fieldSelector: `metadata.name=${this.nodeName}` },
      (_phase, node: V1Node) => this.observe(node, Date.now()),
      // Watches end (timeouts, apiserver restarts): reconnect until stopped.
      () => {
        if (!this.stopped) setTimeout(() => void this.connect().catch(() => undefined), 200);
      },
    );
    await ready;
  }

  private observe(node: V1Node, at: number): void {
    this.latest = node;
    this.onFirstEvent();
    const met = this.waiters.filter((w) => w.test(node));
    this.waiters = this.waiters.filter((w) => !met.includes(w));
    for (const w of met) w.resolve(at);
  }
}
