import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import type { AgentKubeApi } from '../kube/agentKubeApi.js';
import { KubeApiError } from '../kube/kubeClient.js';
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

/** The host's boot time (epoch ms) from /proc/stat's btime. */
export async function bootTime(procRoot: string): Promise<number> {
  const text = await readFile(join(procRoot, 'stat'), 'utf8');
  const match = /^btime\s+(\d+)$/m.exec(text);
  if (!match) throw new Error(`${join(procRoot, 'stat')} has no btime line`);
  return Number(match[1]) * 1000;
}

/**
 * The node side of the `agent` remediation provider, kured-style: watches its own Node and
 * runs the configured reboot command once for a request (an annotation holding the request
 * time) that is newer than this host's boot. A request the host has already rebooted for is
 * therefore never repeated, even after the agent restarts, and needs no acknowledgement.
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
    private readonly now: () => number = Date.now,
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
    const requestedAt = Date.parse(value);
    if (!Number.isFinite(requestedAt)) {
      this.log.warn({ annotation: this.config.annotation, value }, 'reboot request is not a timestamp; ignored');
      this.events.record('Warning', 'RebootRequestInvalid', `${this.config.annotation}="${value.slice(0, 100)}" is not an RFC 3339 time; no reboot`);
      return;
    }
    const booted = await bootTime(this.procRoot);
    const now = this.now();
    if (requestedAt <= booted) {
      this.log.info({ requestedAt: value, bootedAt: new Date(booted).toISOString() }, 'reboot request already served by the last boot');
      return;
    }
    if (now - requestedAt > this.config.maxRequestAgeSeconds * 1000) {
      this.log.warn({ requestedAt: value }, 'reboot request is too old; ignored');
      this.events.record('Warning', 'RebootRequestStale', `reboot requested at ${value} is older than ${this.config.maxRequestAgeSeconds}s; no reboot`);
      return;
    }
    this.log.warn({ requestedAt: value, command: this.config.command }, 'rebooting on request');
    this.events.record('Warning', 'RebootingOnRequest', `rebooting: requested at ${value}, host booted at ${new Date(booted).toISOString()}`);
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
