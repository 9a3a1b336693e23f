import { hostname } from 'node:os';
import {
  CoreV1Api,
  ListWatch,
  Watch,
  type CoreV1Event,
  type KubeConfig,
  type V1Node,
  type V1Taint,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ControllerConfig } from './config/controllerConfig.js';
import { decide, type RemediationDecision, type SkipRule } from './decide.js';
import { summariseFleet, type FleetEntry, type FleetSummary } from './fleet.js';
import type { ControllerMetrics } from './metrics.js';
import { readNode, type NodeFacts, type NodeMemory } from './nodeHealth.js';
import { NodeWriter, describeApiError, type WriteResult } from './nodeWrites.js';
import { runStep, type ProviderResult, type RemediationProvider } from './providers/provider.js';
import type { QuarantineDecision } from './quarantine.js';
import {
  heldBackEvent,
  needsHumanEvent,
  quarantineEvent,
  recoveredEvent,
  stepEndEvent,
  stepErrorEvent,
  stepStartEvent,
  type EventContext,
} from './remediationEvents.js';
import {
  endStep,
  failStep,
  parseRemediationState,
  serializeRemediationState,
  type RemediationState,
  type StoredState,
} from './remediationState.js';

/**
 * The thin loop around decide(): a Node informer (and one for other remediators' Events) kept
 * warm on every replica, and, on the leader only, a pass over all Nodes every few seconds or
 * soon after a Node changes. A pass writes the decided state to the Node *before* acting,
 * with the resourceVersion it decided on, then runs the provider in the background and
 * records the outcome. Everything it knows survives in the Nodes, so a new leader resumes.
 */
export interface LoopDeps {
  config: ControllerConfig;
  provider: RemediationProvider;
  metrics: ControllerMetrics;
  log: Logger;
  /** Whether this replica may act right now (the leader election's clock check). */
  isLeader: () => boolean;
  /** Annotations of the leader Lease, where the run-time pause switch lives. */
  leaseAnnotations: () => Record<string, string>;
  /** reportingInstance of our events. */
  instance?: string;
  now?: () => number;
}

/** Our own write wins over the informer's copy until the informer has caught up with it. */
const overlayTtlMs = 60_000;
/** Rules whose skips are routine (a few seconds of spacing) and not worth an Event each. */
const quietRules: ReadonlySet<SkipRule> = new Set(['min-spacing']);

export class ControllerLoop {
  private readonly core: CoreV1Api;
  private readonly writer: NodeWriter;
  private readonly nodes: ListWatch<V1Node>;
  private readonly platformWatches: Array<ListWatch<CoreV1Event>>;
  private readonly platformEvents = new Map<string, number>();
  private readonly memory = new Map<string, NodeMemory>();
  private readonly overlay = new Map<string, { node: V1Node; at: number }>();
  /** The last few resourceVersions the informer delivered per Node, to tell whether it already has our write. */
  private readonly delivered = new Map<string, string[]>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly heldBack = new Map<string, string>();
  private readonly unreadableLogged = new Map<string, string>();
  private fleet: FleetSummary | undefined;
  private passing = false;
  private wake: (() => void) | undefined;
  private readonly now: () => number;
  private readonly instance: string;

  constructor(
    kubeConfig: KubeConfig,
    private readonly deps: LoopDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.instance = deps.instance ?? hostname();
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.writer = new NodeWriter(this.core);
    const watch = new Watch(kubeConfig);
    const labelSelector = deps.config.nodeSelector || undefined;
    this.nodes = new ListWatch<V1Node>('/api/v1/nodes', watch, () => this.core.listNode({ labelSelector }), false, labelSelector);
    this.nodes.on('update', (node) => this.onNodeChange(node));
    this.nodes.on('add', (node) => this.onNodeChange(node));
    this.nodes.on('delete', (node) => this.forget(node));
    this.nodes.on('error', (err) => deps.log.warn({ err: describeApiError(err) }, 'node watch failed; the informer reconnects'));
    this.platformWatches = deps.config.platform.remediatorSources.map((source) => {
      const fieldSelector = `involvedObject.kind=Node,source=${source}`;
      const informer = new ListWatch<CoreV1Event>(
        '/api/v1/events',
        watch,
        () => this.core.listEventForAllNamespaces({ fieldSelector }),
        false,
        undefined,
        fieldSelector,
      );
      informer.on('add', (e) => this.onPlatformEvent(e));
      informer.on('update', (e) => this.onPlatformEvent(e));
      informer.on('error', (err) => deps.log.warn({ err: describeApiError(err), source }, 'event watch failed; the informer reconnects'));
      return informer;
    });
  }

  /** Starts the informers; every replica runs them so a new leader starts with a warm cache. */
  async start(): Promise<void> {
    await Promise.all([this.nodes.start(), ...this.platformWatches.map((w) => w.start())]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.nodes.stop(), ...this.platformWatches.map((w) => w.stop())]);
    await Promise.allSettled(this.running.values());
  }

  /** Runs passes until `leadership` aborts. Provider calls under way are aborted with it. */
  async lead(leadership: AbortSignal): Promise<void> {
    const { log, config } = this.deps;
    log.info({ provider: this.deps.provider.name }, 'leading: remediation passes start');
    while (!leadership.aborted) {
      try {
        await this.pass(leadership);
      } catch (err) {
        log.error({ err: describeApiError(err) }, 'remediation pass failed; retrying at the next one');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, config.passIntervalSeconds * 1000);
        this.wake = done;
        leadership.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          leadership.removeEventListener('abort', done);
          resolve();
        }
      });
      this.wake = undefined;
    }
    log.warn({ reason: String(leadership.reason) }, 'no longer leading: remediation passes stop');
  }

  /** One decision for every Node. Exposed for tests that drive passes themselves. */
  async pass(leadership: AbortSignal): Promise<void> {
    if (this.passing) return;
    this.passing = true;
    try {
      await this.passOnce(leadership);
    } finally {
      this.passing = false;
    }
  }

  private async passOnce(leadership: AbortSignal): Promise<void> {
    const { config, metrics, log } = this.deps;
    const now = this.now();
    const observed: Array<FleetEntry & { node: V1Node }> = [];
    for (const node of this.currentNodes(now)) {
      const name = node.metadata?.name ?? '';
      const reading = readNode(node, {
        now,
        memory: this.memory.get(node.metadata?.uid ?? name),
        registrationGraceMs: config.detection.registrationGraceSeconds * 1000,
        platformRemediationAt: this.platformEvents.get(name),
      });
      if (!reading.ok) {
        log.warn({ node: name, error: reading.error }, 'ignoring a Node object that cannot be read');
        continue;
      }
      this.memory.set(reading.facts.uid || name, reading.memory);
      const annotation = reading.facts.annotations[config.stateAnnotation];
      observed.push({ node, facts: reading.facts, state: parseRemediationState(annotation) });
    }
    const paused = this.deps.leaseAnnotations()[config.pauseAnnotation] === 'true';
    const fleet = summariseFleet(observed, now, config, this.fleet, paused);
    if (fleet.breakerOpen !== this.fleet?.breakerOpen) {
      log.warn({ unhealthy: fleet.unhealthy, nodes: fleet.nodes, open: fleet.breakerOpen }, fleet.breakerOpen ? 'circuit breaker open' : 'circuit breaker closed');
    }
    this.fleet = fleet;
    metrics.observeFleet(fleet);
    // Starts made during this pass count against the limits for the nodes after them.
    const live = { ...fleet };
    const blocked = new Map<SkipRule, number>();
    for (const entry of observed) {
      if (leadership.aborted || !this.deps.isLeader()) return;
      const { remediation, quarantine } = decide(entry.facts, entry.state, live, now, config);
      if (remediation.kind === 'skip') blocked.set(remediation.rule, (blocked.get(remediation.rule) ?? 0) + 1);
      let node = entry.node;
      if (!this.running.has(entry.facts.name)) {
        node = (await this.applyRemediation(node, entry.facts, entry.state, remediation, live, leadership)) ?? node;
      }
      await this.applyQuarantine(node, entry.facts, quarantine);
    }
    metrics.observeBlocked(blocked);
  }

  private async applyRemediation(
    node: V1Node,
    facts: NodeFacts,
    state: StoredState,
    decision: RemediationDecision,
    live: FleetSummary,
    leadership: AbortSignal,
  ): Promise<V1Node | undefined> {
    const { config, metrics, log } = this.deps;
    const name = facts.name;
    const ctx = this.eventContext(facts);
    if (decision.kind !== 'skip' && decision.kind !== 'defer') this.heldBack.delete(name);
    if (state?.phase === 'unreadable' && this.unreadableLogged.get(name) !== state.error) {
      this.unreadableLogged.set(name, state.error);
      log.error({ node: name, annotation: config.stateAnnotation, error: state.error }, 'remediation state annotation is unreadable; this node is left alone until a person fixes or removes it');
    }
    switch (decision.kind) {
      case 'none':
      case 'wait':
        return undefined;
      case 'skip':
      case 'defer': {
        const key = decision.kind === 'skip' ? decision.rule : 'defer';
        if (this.heldBack.get(name) === key) return undefined;
        this.heldBack.set(name, key);
        log.info({ node: name, rule: key, why: decision.why }, 'remediation held back');
        if (decision.kind === 'defer' || !quietRules.has(decision.rule)) await this.emit(heldBackEvent(ctx, decision));
        return undefined;
      }
      case 'reset': {
        const written = await this.writeState(node, undefined, { [config.needsHumanLabel]: null });
        if (written) log.info({ node: name, why: decision.why }, 'remediation state cleared');
        return written;
      }
      case 'recovered': {
        const written = await this.writeState(node, decision.state);
        if (!written) return undefined;
        if (decision.healedBy) metrics.stepSucceeded(decision.healedBy);
        log.info({ node: name, why: decision.why }, 'node recovered');
        await this.emit(recoveredEvent(ctx, decision));
        return written;
      }
      case 'needs-human': {
        const written = await this.writeState(node, decision.state, { [config.needsHumanLabel]: 'true' });
        if (!written) return undefined;
        if (decision.stillUnhealthyAfter) metrics.stepFailed(decision.stillUnhealthyAfter, 'still_unhealthy');
        metrics.neededHuman();
        log.warn({ node: name, why: decision.why }, 'remediation gave up: a human is needed');
        await this.emit(needsHumanEvent(ctx, decision));
        return written;
      }
      case 'start': {
        // The last word before acting: only a leader whose state write lands may act.
        if (leadership.aborted || !this.deps.isLeader()) return undefined;
        const written = await this.writeState(node, decision.state);
        if (!written) return undefined;
        if (!state || state.phase === 'recovered') live.inFlight += 1;
        live.lastStartAt = this.now();
        if (decision.stillUnhealthyAfter) metrics.stepFailed(decision.stillUnhealthyAfter, 'still_unhealthy');
        metrics.stepStarted(decision.step, this.deps.provider.name);
        const dryRun = this.deps.provider.name === 'dry-run';
        log.info({ node: name, step: decision.step, attempt: decision.attempt, why: decision.why, dryRun }, 'remediation step started');
        await this.emit(stepStartEvent(ctx, decision, dryRun));
        const run = this.runProvider(facts, decision.step, decision.state, leadership).finally(() => this.running.delete(name));
        this.running.set(name, run);
        return written;
      }
    }
  }

  private async runProvider(facts: NodeFacts, step: RemediationState['step'], started: RemediationState, leadership: AbortSignal): Promise<void> {
    const { config, metrics, log } = this.deps;
    const signal = AbortSignal.any([leadership, AbortSignal.timeout(config.ladder.stepTimeoutSeconds * 1000)]);
    const target = { name: facts.name, uid: facts.uid, ...(facts.providerID ? { providerID: facts.providerID } : {}) };
    let result: ProviderResult;
    try {
      result = await runStep(this.deps.provider, step, target, signal);
    } catch (err) {
      result = { ok: false, code: 'ProviderCrashed', message: (err as Error).message };
    }
    // A replica that lost the lease writes nothing: its successor treats the step as started.
    if (leadership.aborted || !this.deps.isLeader()) {
      log.warn({ node: facts.name, step }, 'leadership lost during the step; its outcome is left to the next leader');
      return;
    }
    const outcome = result.ok ? endStep(started, this.now()) : failStep(started, this.now(), result.code);
    if (!(await this.recordOutcome(facts.name, started, outcome))) return;
    const ctx = this.eventContext(facts);
    if (result.ok) {
      log.info({ node: facts.name, step, detail: result.detail }, 'remediation step finished');
      await this.emit(stepEndEvent(ctx, step, result));
    } else {
      metrics.stepFailed(step, 'provider_error');
      log.warn({ node: facts.name, step, code: result.code, message: result.message }, 'remediation step failed');
      await this.emit(stepErrorEvent(ctx, step, result));
    }
  }

  /** Writes a step's outcome onto the state it started from, re-reading the Node on conflict. */
  private async recordOutcome(name: string, started: RemediationState, outcome: RemediationState): Promise<boolean> {
    const { config, log } = this.deps;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const node = await this.writer.read(name).catch(() => undefined);
      if (!node) break;
      const current = parseRemediationState(node.metadata?.annotations?.[config.stateAnnotation]);
      if (current?.phase !== 'started' || current.stepStartedAt !== started.stepStartedAt || current.step !== started.step) {
        log.warn({ node: name }, 'the stored state moved on while the step ran; its outcome is not recorded');
        return false;
      }
      if (await this.writeState(node, outcome)) return true;
    }
    log.error({ node: name, step: started.step }, 'could not record the outcome of a step; it counts as ended at the step timeout');
    return false;
  }

  private async applyQuarantine(node: V1Node, facts: NodeFacts, decision: QuarantineDecision): Promise<void> {
    if (decision.kind !== 'add' && decision.kind !== 'remove') return;
    const { config, log } = this.deps;
    const key = config.quarantine.taintKey;
    const others: V1Taint[] = (node.spec?.taints ?? []).filter((t) => t.key !== key);
    const taints = decision.kind === 'add' ? [...others, { key, value: 'true', effect: 'NoSchedule' }] : others;
    const result = await this.writer.setTaints(node, taints);
    if (!this.remember(result, facts.name)) return;
    log.info({ node: facts.name, quarantine: decision.kind, why: decision.why }, 'quarantine taint changed');
    await this.emit(quarantineEvent(this.eventContext(facts), decision));
  }

  private async writeState(node: V1Node, state: RemediationState | undefined, labels?: Record<string, string | null>): Promise<V1Node | undefined> {
    const { config } = this.deps;
    const changes: { annotations: Record<string, string | null>; labels?: Record<string, string | null> } = {
      annotations: { [config.stateAnnotation]: state ? serializeRemediationState(state) : null },
    };
    if (labels) changes.labels = labels;
    const result = await this.writer.patchMetadata(node, changes);
    return this.remember(result, node.metadata?.name ?? '') ? (result as { node: V1Node }).node : undefined;
  }

  private remember(result: WriteResult, name: string): boolean {
    if (result.ok) {
      // The watch may deliver our write before the patch response arrives: then the informer's
      // copy is already as new as ours, or newer, and must not be hidden behind it.
      const version = result.node.metadata?.resourceVersion ?? '';
      if (!this.delivered.get(name)?.includes(version)) this.overlay.set(name, { node: result.node, at: this.now() });
      return true;
    }
    // Our own copy is what went stale (the watch may have shown our write before we kept it).
    if (result.conflict) this.overlay.delete(name);
    const level = result.conflict ? 'info' : 'warn';
    this.deps.log[level]({ node: name, error: result.error }, result.conflict ? 'node changed since the decision; deciding again next pass' : 'node write failed');
    return false;
  }

  private currentNodes(now: number): V1Node[] {
    return this.nodes.list().map((node) => {
      const name = node.metadata?.name ?? '';
      const ours = this.overlay.get(name);
      if (!ours) return node;
      if (now - ours.at > overlayTtlMs || node.metadata?.resourceVersion === ours.node.metadata?.resourceVersion) {
        this.overlay.delete(name);
        return node;
      }
      return ours.node;
    });
  }

  private onNodeChange(node: V1Node): void {
    const name = node.metadata?.name ?? '';
    const version = node.metadata?.resourceVersion ?? '';
    this.delivered.set(name, [...(this.delivered.get(name) ?? []), version].slice(-8));
    const ours = this.overlay.get(name);
    if (ours && ours.node.metadata?.resourceVersion === version) this.overlay.delete(name);
    this.wake?.();
  }

  private forget(node: V1Node): void {
    const name = node.metadata?.name ?? '';
    this.overlay.delete(name);
    this.delivered.delete(name);
    this.heldBack.delete(name);
    this.unreadableLogged.delete(name);
    this.platformEvents.delete(name);
    this.memory.delete(node.metadata?.uid ?? name);
  }

  private onPlatformEvent(event: CoreV1Event): void {
    const name = event.involvedObject?.name;
    if (!name) return;
    const times = [event.lastTimestamp, event.eventTime, event.firstTimestamp, event.metadata?.creationTimestamp]
      .map((t) => (t ? new Date(t).getTime() : Number.NaN))
      .filter(Number.isFinite);
    if (times.length === 0) return;
    const at = Math.min(Math.max(...times), this.now());
    if (at > (this.platformEvents.get(name) ?? 0)) this.platformEvents.set(name, at);
  }

  private eventContext(facts: NodeFacts): EventContext {
    return { node: { name: facts.name, uid: facts.uid }, config: this.deps.config, instance: this.instance, now: new Date(this.now()) };
  }

  private async emit(event: CoreV1Event): Promise<void> {
    try {
      await this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? 'default', body: event });
    } catch (err) {
      this.deps.log.warn({ reason: event.reason, err: describeApiError(err) }, 'could not write event');
    }
  }
}
