import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import type { AgentConfig } from '../config/schema.js';
import type { AgentKubeApi } from '../kube/agentKubeApi.js';
import { KubeApiError } from '../../common/kube/kubeClient.js';
import { Backoff } from '../publish/backoff.js';
import type { EventRecorder } from '../publish/eventRecorder.js';

export type CommandRunner = (command: readonly string[]) => Promise<{ code: number | null; output: string }>;

/** Runs the reboot command; its output is kept (bounded) for the event if it fails. */
export const runCommand: CommandRunner = (command) =>
  new Promise((resolve) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-500));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => resolve({ code: null, output: err.message }));
    child.on('close', (code) => resolve({ code, output }));
  });

/** Where the kernel says which boot this is (a new random UUID at every boot), under procRoot. */
export const bootIdPath = 'sys/kernel/random/boot_id';

/** The host's current boot ID: /proc/sys/kernel/random/boot_id, the value the kubelet reports as status.nodeInfo.bootID. */
export async function currentBootId(procRoot: string): Promise<string> {
  return (await readFile(join(procRoot, bootIdPath), 'utf8')).trim();
}

const bootIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The node side of the `agent` remediation provider, kured-style: watches its own Node and
 * runs the configured reboot command when the request annotation holds this host's current
 * boot ID (the controller writes the status.nodeInfo.bootID it saw). After the reboot the boot
 * ID is new, so the request is void: it is never served twice, even after an agent restart,
 * whatever the node's or the controller's clock say, and needs no acknowledgement.
 */
export class RebootOnRequest {
  private readonly abort = new AbortController();
  private readonly backoff = new Backoff(500, 30_000);
  private handled: string | undefined;

  constructor(
    private readonly api: AgentKubeApi,
    private readonly config: AgentConfig['reboot'],
    private readonly nodeName: string,
    private readonly procRoot: string,
    private readonly events: EventRecorder,
    private readonly log: Logger,
    private readonly run: CommandRunner = runCommand,
  ) {}

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.abort.abort();
  }

  private async loop(): Promise<void> {
    const { signal } = this.abort;
    const selector = encodeURIComponent(`metadata.name=${this.nodeName}`);
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          const node = await this.api.getNode(this.nodeName, signal);
          resourceVersion = node.metadata?.resourceVersion;
          await this.consider(node);
        }
        const path = `/api/v1/nodes?fieldSelector=${selector}&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${resourceVersion ?? ''}`;
        await this.api.client.watch<V1Node>(
          path,
          (event) => {
            resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
            if (event.type === 'ADDED' || event.type === 'MODIFIED') void this.consider(event.object);
          },
          { idleTimeoutMs: 330_000, signal },
        );
        this.backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        // 410 Gone: our resourceVersion is too old; read the Node afresh.
        if (err instanceof KubeApiError && err.status === 410) resourceVersion = undefined;
        const delay = this.backoff.next(err instanceof KubeApiError ? err.retryAfterSeconds : undefined);
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, 'watching own node for reboot requests failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Decides whether this Node's request is one to act on, and acts at most once per request. */
  async consider(node: V1Node): Promise<void> {
    const value = node.metadata?.annotations?.[this.config.annotation];
    if (value === undefined || value === this.handled) return;
    this.handled = value;
    if (!bootIdPattern.test(value)) {
      this.log.warn({ annotation: this.config.annotation, value }, 'reboot request is not a boot ID; ignored');
      this.events.record('Warning', 'RebootRequestInvalid', `${this.config.annotation}="${value.slice(0, 100)}" is not a boot ID (status.nodeInfo.bootID); no reboot`);
      return;
    }
    let booted: string;
    try {
      booted = await currentBootId(this.procRoot);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot read the boot ID; reboot request ignored');
      this.events.record('Warning', 'RebootBootIDUnreadable', `cannot read ${join(this.procRoot, bootIdPath)} (${(err as Error).message}); no reboot`);
      return;
    }
    if (value !== booted) {
      this.log.info({ requestedFor: value, bootID: booted }, 'reboot request is for an earlier boot: already served');
      return;
    }
    this.log.warn({ bootID: booted, command: this.config.command }, 'rebooting on request');
    this.events.record('Warning', 'RebootingOnRequest', `rebooting: requested for boot ${booted}, the current one`);
    // Say it before the host goes down; a failure to say it does not stop the reboot.
    await this.events.drain();
    const result = await this.run(this.config.command);
    if (result.code !== 0) {
      this.log.error({ code: result.code, output: result.output }, 'reboot command failed');
      this.events.record('Warning', 'RebootCommandFailed', `${this.config.command.join(' ')} exited ${result.code ?? 'without starting'}: ${result.output.trim()}`);
      await this.events.drain();
    }
  }
}
