import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { CoreV1Event, V1Node, V1Taint } from '@kubernetes/client-node';
import type { Logger } from '../common/log.js';
import { keys } from '../common/contract.js';
import { KubeApiError, type KubeClient } from '../common/kube/kubeClient.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import { decide, type RemediationDecision, type SkipRule } from './decide.js';
import { FleetIndex, nodeContribution, type Contribution } from './fleet.js';
import { parseFleetMemory, serializeFleetMemory } from './fleetMemory.js';
import type { FleetSnapshot } from './fleetView.js';
import { Informer, eventSource, kubeLister, kubeWatchSource } from './informer.js';
import { PlatformEventTrust, platformEventWatches } from './platformEvents.js';
import { slimNode, type SlimKeep } from './slimNode.js';
import type { ControllerMetrics } from './metrics.js';
import { readNode, type NodeFacts, type NodeMemory } from './nodeHealth.js';
import { NodeWriter, describeApiError, type MetadataChanges, type WriteResult } from './nodeWrites.js';
import type { RemediationProvider } from './providers/provider.js';
import { startResync } from './resync.js';
import { WorkQueue } from './workQueue.js';
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
import { runStepToOutcome, type StepOutcome } from './stepRunner.js';
import {
  endStep,
  failStep,
  inconclusiveStep,
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
 * records the outcome. Everything it knows survives in the Nodes (and the storm memory in
 * the Lease), so a new leader resumes; a step its predecessor left without an outcome is
 * inspected, never sent again blindly.
 *
 * Nothing is decided on a cache that stopped moving: while any informer's watch has been
 * down for longer than cache.maxStaleSeconds, passes decide nothing, /readyz fails and
 * `isCurrent()` is false (the election gives the Lease up on it).
 */
export interface LoopDeps {
  config: ControllerConfig;
  provider: RemediationProvider;
  metrics: ControllerMetrics;
  log: Logger;
  /** Whether this replica may act right now (the leader election's clock check). */
  isLeader: () => boolean;
  /** Annotations of the leader Lease, where the run-time pause switch and the fleet memory live. */
  leaseAnnotations: () => Record<string, string>;
  /** Persists a Lease annotation with the leader's next renewal (the fleet memory). */
  remember?: (key: string, value: string) => void;
  /** reportingInstance of our events. */
  instance?: string;
  now?: () => number;
  /** Sees every Node as it arrives, before the cache slims it: the fleet page keeps its own compact rows from it. */
  onNode?: (node: V1Node) => void;
}

/** Our own write wins over the informer's copy until the informer has caught up with it. */
const overlayTtlMs = 60_000;
/** Rules whose skips are routine (a few seconds of spacing) and not worth an Event each. */
const quietRules: ReadonlySet<SkipRule> = new Set(['min-spacing']);
/** The Node watch's bookmarks come about once a minute: a stream silent this long is taken for dead. */
const nodeWatchIdleMs = 90_000;
/** A page's reply may be this large per Node asked for (a kubelet's Node is 10-30 KiB of JSON), 8 MiB at least. */
const listBytesPerNode = 128 * 1024;

/**
 * Annotations one reconcile has to write, handed to the first write it makes to the Node
 * (the remediation state, else the quarantine taint), so a decision costs one write, not two
 * in series; what no write took is written on its own at the end.
 */
interface Carried {
  annotations?: Record<string, string>;
}

function takeCarried(carried: Carried | undefined): Record<string, string> {
  const annotations = carried?.annotations ?? {};
  if (carried) delete carried.annotations;
  return annotations;
}

export class ControllerLoop {
  private readonly writer: NodeWriter;
  private readonly nodes: Informer<V1Node, V1Node>;
  private readonly platformWatches: Array<Informer<CoreV1Event, CoreV1Event>>;
  private readonly platformEvents = new Map<string, number>();
  private readonly platformTrust: PlatformEventTrust;
  private readonly memory = new Map<string, NodeMemory>();
  private readonly overlay = new Map<string, { node: V1Node; at: number }>();
  /** The last few resourceVersions the informer delivered per Node, to tell whether it already has our write. */
  private readonly delivered = new Map<string, string[]>();
  private readonly running = new Map<string, Promise<void>>();
  /** What holds each node back (a skip rule, or deferral to the platform): an event on each change, and the blocked-nodes gauge. */
  private readonly heldBack = new Map<string, SkipRule | 'defer'>();
  private readonly unreadableLogged = new Map<string, string>();
  /** Nodes to reconcile, one at a time, while leading. */
  private readonly queue = new WorkQueue();
  /** The fleet's counts, kept node by node while leading. */
  private index: FleetIndex | undefined;
  private leading: AbortSignal | undefined;
  private freshness: NodeJS.Timeout | undefined;
  /** Whether the caches were too stale to act on at the last look. */
  private blind = false;
  /** When the caches last became current again after being too stale: nodes could not report before it either. */
  private blindUntil: number | undefined;
  private readonly now: () => number;
  private readonly instance: string;
  /** What the Node cache keeps of each Node: the labels, annotations and conditions decisions read. */
  private readonly keep: SlimKeep;

  constructor(
    private readonly client: KubeClient,
    private readonly deps: LoopDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.instance = deps.instance ?? hostname();
    const { config } = deps;
    this.keep = {
      labels: new Set([config.optOut.key, config.needsHumanLabel, 'kubernetes.io/os']),
      annotations: new Set([config.stateAnnotation, config.optOut.key, keys.readySeen]),
      conditions: new Set([...config.detection.agentConditions.map((c) => c.type), ...config.quarantine.conditions]),
    };
    this.writer = new NodeWriter(client);
    const labelSelector = deps.config.nodeSelector || undefined;
    const pageSize = deps.config.cache.listPageSize;
    const onError = (name: string) => (err: unknown, during: 'list' | 'watch') => {
      deps.metrics.informerFailed(name, during);
      deps.log.warn({ err: describeApiError(err), informer: name, during }, 'informer list or watch failed; retrying with backoff');
    };
    this.nodes = new Informer<V1Node, V1Node>({
      name: 'nodes',
      path: '/api/v1/nodes',
      watch: kubeWatchSource(client, { idleTimeoutMs: nodeWatchIdleMs }),
      list: kubeLister<V1Node>(client, '/api/v1/nodes', { labelSelector }, Math.max(8 * 1024 * 1024, pageSize * listBytesPerNode)),
      ...(labelSelector ? { watchParams: { labelSelector } } : {}),
      key: (node) => node.metadata?.name,
      transform: (node) => {
        deps.onNode?.(node);
        return slimNode(node, this.keep);
      },
      pageSize,
      initialSync: deps.config.cache.initialSync,
      onWatchListFallback: (reason) => deps.log.warn({ err: describeApiError(reason), informer: 'nodes' }, 'the API server does not serve the streaming list (sendInitialEvents); the Node cache uses paged LISTs from now on'),
      resourceVersion: (node) => node.metadata?.resourceVersion,
      onError: onError('nodes'),
      now: this.now,
    });
    this.nodes.on({
      add: (node) => this.onNodeChange(node),
      update: (node) => this.onNodeChange(node),
      delete: (node) => this.forget(node),
    });
    this.platformTrust = new PlatformEventTrust(deps.config.platform, deps.log, this.now);
    this.platformWatches = platformEventWatches(deps.config.platform).map(({ namespace, source, path, fieldSelector }) => {
      const name = `events ${namespace} source=${source}`;
      const informer = new Informer<CoreV1Event, CoreV1Event>({
        name,
        ...eventSource(client, path, fieldSelector),
        transform: (e) => e,
        onError: onError(name),
        now: this.now,
      });
      informer.on({ add: (e) => this.onPlatformEvent(e), update: (e) => this.onPlatformEvent(e) });
      return informer;
    });
  }

  /** Starts the informers; every replica runs them so a new leader starts with a warm cache. */
  async start(): Promise<void> {
    await Promise.all([this.nodes.start(), ...this.platformWatches.map((w) => w.start())]);
    this.freshness = setInterval(() => this.whyNotCurrent(), 1000);
    this.freshness.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.freshness);
    await Promise.all([this.nodes.stop(), ...this.platformWatches.map((w) => w.stop())]);
    await Promise.allSettled(this.running.values());
  }

  /** The Node cache as decisions see it (slim copies), for read-only views and tests. */
  cachedNode(name: string): V1Node | undefined {
    return this.nodes.get(name);
  }

  /**
   * What this replica knows of the fleet, read-only, for the fleet page: which Nodes it caches,
   * whether it leads and may act, and while leading the fleet's counts and what holds each
   * node back; the platform remediators' Events it watches.
   */
  fleetSnapshot(): FleetSnapshot {
    return {
      isCached: (name) => this.nodes.get(name) !== undefined,
      leading: this.leading !== undefined,
      notCurrent: this.whyNotCurrent(),
      fleet: this.index?.summary(this.paused()),
      heldBack: this.leading ? new Map(this.heldBack) : new Map(),
      platformEvents: this.platformWatches.flatMap((w) => w.list()),
    };
  }

  /** Whether the caches are current enough to act on. */
  isCurrent(): boolean {
    return this.whyNotCurrent() === undefined;
  }

  /**
   * Why this replica must not act now (undefined: it may): an informer not synced yet, or a
   * watch down for longer than cache.maxStaleSeconds. Also tracks the blind spans.
   */
  whyNotCurrent(): string | undefined {
    const bound = this.deps.config.cache.maxStaleSeconds * 1000;
    let why: string | undefined;
    for (const informer of [this.nodes, ...this.platformWatches]) {
      const stale = informer.staleForMs();
      this.deps.metrics.observeCacheStaleness(informer.name, stale);
      if (why !== undefined) continue;
      if (!informer.hasSynced()) why = `${informer.name} cache not synced yet`;
      else if (!Number.isFinite(stale)) why = `${informer.name} watch not open yet`;
      else if (stale > bound) why = `${informer.name} watch down for ${Math.round(stale / 1000)}s (more than cache.maxStaleSeconds=${bound / 1000})`;
    }
    if (why !== undefined && !this.blind) {
      this.blind = true;
      this.deps.log.warn({ why }, 'cache is not current: nothing is decided until it is');
    } else if (why === undefined && this.blind) {
      this.blind = false;
      this.blindUntil = this.now();
      this.deps.log.info('cache is current again; node heartbeats are timed from now');
      if (this.leading) for (const name of this.nodes.keys()) this.queue.add(name);
    }
    return why;
  }

  /**
   * Reconciles Nodes one at a time from the work queue until `leadership` aborts: every Node
   * once at the start (the first full pass), then a Node when it changes, when a decision
   * said when to look again, or when the resync reaches it. Provider calls under way are
   * aborted with the leadership.
   */
  async lead(leadership: AbortSignal): Promise<void> {
    const { log, config } = this.deps;
    log.info({ provider: this.deps.provider.name }, 'leading: remediation starts');
    this.leading = leadership;
    const now = this.now();
    this.index = new FleetIndex(config, { ...parseFleetMemory(this.deps.leaseAnnotations()[keys.fleetMemory], now), breakerOpen: false });
    const contributions: Array<[string, Contribution]> = [];
    for (const name of this.nodes.keys()) {
      const observed = this.observe(name, now);
      if (observed) contributions.push([name, nodeContribution(observed.facts, observed.state, now, config)]);
    }
    this.noteBreaker(this.index.load(contributions, now), now);
    this.deps.metrics.observeFleet(this.index.summary(this.paused()));
    for (const name of this.nodes.keys()) this.queue.add(name);
    // Every Node again within passIntervalSeconds, so no node is forgotten.
    const nodes = this.nodes;
    const stopResync = startResync(
      { keys: () => nodes.keys(), get size() { return nodes.size; }, generation: () => nodes.stats.lists },
      config.passIntervalSeconds * 1000,
      (name) => this.queue.add(name),
    );
    try {
      for (;;) {
        const name = await this.queue.get(leadership);
        if (name === undefined) break;
        try {
          await this.reconcile(name, leadership);
          this.queue.forget(name);
        } catch (err) {
          const delay = this.queue.addRateLimited(name);
          log.error({ node: name, err: describeApiError(err), retryInMs: delay }, 'reconcile failed; retrying this node with backoff');
        } finally {
          this.queue.done(name);
        }
      }
    } finally {
      stopResync();
      this.queue.clear();
      this.leading = undefined;
      this.index = undefined;
    }
    log.warn({ reason: String(leadership.reason) }, 'no longer leading: remediation stops');
  }

  /** The facts and stored state of one cached Node, read as decisions read them. */
  private observe(name: string, now: number): { node: V1Node; facts: NodeFacts; state: StoredState } | undefined {
    const node = this.currentNode(name, now);
    if (!node) return undefined;
    const { config, log } = this.deps;
    const reading = readNode(node, {
      now,
      memory: this.memory.get(node.metadata?.uid || name),
      platformRemediationAt: this.platformEvents.get(name),
      readySeenAnnotation: keys.readySeen,
      conditionHeartbeatMs: config.detection.agentHeartbeatSeconds * 1000,
      blindUntil: this.blindUntil,
    });
    if (!reading.ok) {
      log.warn({ node: name, error: reading.error }, 'ignoring a Node object that cannot be read');
      return undefined;
    }
    return { node, facts: reading.facts, state: parseRemediationState(reading.facts.annotations[config.stateAnnotation]) };
  }

  private paused(): boolean {
    return this.deps.leaseAnnotations()[this.deps.config.pauseAnnotation] === 'true';
  }

  /** One Node: decide, write, act; then say when to look at it again. */
  private async reconcile(name: string, leadership: AbortSignal): Promise<void> {
    const index = this.index;
    if (!index || leadership.aborted || !this.deps.isLeader() || !this.isCurrent()) return;
    const { config, metrics } = this.deps;
    const now = this.now();
    const observed = this.observe(name, now);
    if (!observed) {
      this.noteBreaker(index.delete(name, now), now);
      return;
    }
    const { facts, state } = observed;
    let node = observed.node;
    this.noteBreaker(index.set(name, nodeContribution(facts, state, now, config), now), now);
    // A node seen Ready that now fails is marked so on the Node, so no later replica takes it for a never-ready node.
    const carried: Carried =
      facts.everReady && facts.ready !== 'True' && facts.annotations[keys.readySeen] === undefined
        ? { annotations: { [keys.readySeen]: new Date(now).toISOString() } }
        : {};
    const fleet = index.summary(this.paused());
    const { remediation, quarantine } = decide(facts, state, fleet, now, config);
    if (!this.running.has(name)) {
      if (state?.phase === 'started') {
        // A step with no recorded outcome that nobody here is running: its leader died mid-call.
        this.resume(facts, state, leadership);
      } else {
        const written = await this.applyRemediation(node, facts, state, remediation, leadership, carried);
        if (written) {
          node = written;
          const after = this.observe(name, this.now());
          if (after) this.noteBreaker(index.set(name, nodeContribution(after.facts, after.state, this.now(), config), this.now()), this.now());
        }
      }
    }
    await this.applyQuarantine(node, facts, quarantine, carried);
    if (carried.annotations) await this.writeAnnotations(node, takeCarried(carried));
    metrics.observeFleet(index.summary(this.paused()));
    metrics.reconciled();
    this.deps.log.debug({ node: name, decision: remediation.kind, why: remediation.why }, 'reconciled');
    this.requeue(name, remediation, now);
  }

  /** When to look at a Node again without any change to it: what the decision said, else the resync. */
  private requeue(name: string, decision: RemediationDecision, now: number): void {
    const until = 'until' in decision ? decision.until : undefined;
    if (until !== undefined) this.queue.addAfter(name, Math.max(0, until - now) + 1);
    else if (decision.kind === 'skip') this.queue.addAfter(name, this.deps.config.passIntervalSeconds * 1000);
  }

  /** Logs breaker moves, persists the storm end, and lets held-back nodes try again when it closes. */
  private noteBreaker(move: 'opened' | 'closed' | undefined, now: number): void {
    if (!move || !this.index) return;
    const fleet = this.index.summary(this.paused());
    this.deps.log.warn({ unhealthy: fleet.unhealthy, nodes: fleet.nodes, open: fleet.breakerOpen }, move === 'opened' ? 'circuit breaker open' : 'circuit breaker closed');
    if (move === 'closed') {
      this.deps.remember?.(keys.fleetMemory, serializeFleetMemory({ stormEndedAt: now }));
      for (const name of this.heldBack.keys()) this.queue.add(name);
    }
  }

  private setHeldBack(name: string, key: SkipRule | 'defer' | undefined): void {
    if (this.heldBack.get(name) === key) return;
    if (key === undefined) this.heldBack.delete(name);
    else this.heldBack.set(name, key);
    const counts = new Map<SkipRule, number>();
    for (const rule of this.heldBack.values()) if (rule !== 'defer') counts.set(rule, (counts.get(rule) ?? 0) + 1);
    this.deps.metrics.observeBlocked(counts);
  }

  private async writeAnnotations(node: V1Node, annotations: Record<string, string>): Promise<void> {
    this.remember(await this.writer.patchMetadata(node, { annotations }), node.metadata?.name ?? '');
  }

  private async applyRemediation(
    node: V1Node,
    facts: NodeFacts,
    state: StoredState,
    decision: RemediationDecision,
    leadership: AbortSignal,
    carried: Carried,
  ): Promise<V1Node | undefined> {
    const { config, metrics, log } = this.deps;
    const name = facts.name;
    const ctx = this.eventContext(facts);
    if (decision.kind !== 'skip' && decision.kind !== 'defer') this.setHeldBack(name, undefined);
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
        this.setHeldBack(name, key);
        log.info({ node: name, rule: key, why: decision.why }, 'remediation held back');
        if (decision.kind === 'defer' || !quietRules.has(decision.rule)) await this.emit(heldBackEvent(ctx, decision));
        return undefined;
      }
      case 'reset': {
        const written = await this.writeState(node, undefined, { [config.needsHumanLabel]: null }, carried);
        if (written) log.info({ node: name, why: decision.why }, 'remediation state cleared');
        return written;
      }
      // The event goes first, under a name fixed by the ladder: a leader killed between the
      // two writes leaves the state as it was, and its successor writes the same event again,
      // which the API server keeps once.
      case 'recovered': {
        await this.emit(recoveredEvent(ctx, decision));
        const written = await this.writeState(node, decision.state, undefined, carried);
        if (!written) return undefined;
        if (decision.healedBy) metrics.stepSucceeded(decision.healedBy);
        log.info({ node: name, why: decision.why }, 'node recovered');
        return written;
      }
      case 'needs-human': {
        await this.emit(needsHumanEvent(ctx, decision));
        const written = await this.writeState(node, decision.state, { [config.needsHumanLabel]: 'true' }, carried);
        if (!written) return undefined;
        if (decision.stillUnhealthyAfter) metrics.stepFailed(decision.stillUnhealthyAfter, 'still_unhealthy');
        metrics.neededHuman();
        log.warn({ node: name, why: decision.why }, 'remediation gave up: a human is needed');
        return written;
      }
      case 'start': {
        // The last word before acting: only a leader whose state write lands may act.
        if (leadership.aborted || !this.deps.isLeader()) return undefined;
        const written = await this.writeState(node, decision.state, undefined, carried);
        if (!written) return undefined;
        if (decision.stillUnhealthyAfter) metrics.stepFailed(decision.stillUnhealthyAfter, 'still_unhealthy');
        metrics.stepStarted(decision.step, this.deps.provider.name);
        const dryRun = this.deps.provider.name === 'dry-run';
        log.info({ node: name, step: decision.step, attempt: decision.attempt, why: decision.why, dryRun }, 'remediation step started');
        // The state first: it is what makes the step start at most once. A successor that finds
        // it without this event writes it on resuming (same name).
        await this.emit(stepStartEvent(ctx, decision, dryRun));
        // Trying a step again after an inconclusive try: an operation sent then may have
        // finished since, so ARM is asked about anything after that try began.
        const inspectSince = decision.again && state && state.phase !== 'unreadable' ? state.stepStartedAt : decision.state.stepStartedAt;
        this.track(name, this.runProvider(facts, decision.step, decision.state, leadership, decision.again === true, inspectSince));
        return written;
      }
    }
  }

  /** Establishes the outcome of a step a previous leader started and never recorded: inspect first, never re-send blindly. */
  private resume(facts: NodeFacts, started: RemediationState, leadership: AbortSignal): void {
    const startedAt = new Date(started.stepStartedAt).toISOString();
    this.deps.log.info({ node: facts.name, step: started.step, startedAt }, 'resuming a step whose outcome was never recorded');
    const why = `the node was unhealthy (started at ${startedAt} by a leader that stopped before recording its outcome)`;
    const dryRun = this.deps.provider.name === 'dry-run';
    this.track(
      facts.name,
      (async () => {
        // Written already (same name) unless the leader died between the state and the event.
        await this.emit(stepStartEvent(this.eventContext(facts), { step: started.step, attempt: started.attempt, why, state: started }, dryRun));
        await this.runProvider(facts, started.step, started, leadership, true);
      })(),
    );
  }

  private track(name: string, run: Promise<void>): void {
    this.running.set(
      name,
      run.finally(() => {
        this.running.delete(name);
        if (this.leading) this.queue.add(name);
      }),
    );
  }

  /**
   * Runs one step to its outcome within the step timeout (retrying what is transient,
   * inspecting what is unknown), records it on the Node, and says so in an End or Error event.
   * `inspectFirst`: the step may already have been sent (a predecessor's, or an inconclusive try).
   */
  private async runProvider(
    facts: NodeFacts,
    step: RemediationState['step'],
    started: RemediationState,
    leadership: AbortSignal,
    inspectFirst: boolean,
    inspectSince = started.stepStartedAt,
  ): Promise<void> {
    const { config, metrics, log } = this.deps;
    const target = {
      name: facts.name,
      uid: facts.uid,
      ...(facts.providerID ? { providerID: facts.providerID } : {}),
      ...(facts.bootID ? { bootID: facts.bootID } : {}),
    };
    let outcome: StepOutcome;
    try {
      outcome = await runStepToOutcome(this.deps.provider, step, target, {
        signal: leadership,
        budgetMs: config.ladder.stepTimeoutSeconds * 1000,
        requestedAt: inspectSince,
        inspectFirst,
      });
    } catch (err) {
      outcome = { kind: 'inconclusive', failure: { ok: false, code: 'ProviderCrashed', message: (err as Error).message, class: 'unknown' } };
    }
    // A replica that lost the lease writes nothing: its successor inspects the step.
    if (outcome.kind === 'aborted' || leadership.aborted || !this.deps.isLeader()) {
      log.warn({ node: facts.name, step }, 'leadership lost during the step; its outcome is left to the next leader');
      return;
    }
    const now = this.now();
    const recorded =
      outcome.kind === 'ended'
        ? endStep(started, now)
        : outcome.kind === 'inconclusive'
          ? inconclusiveStep(started, now, outcome.failure.code)
          : failStep(started, now, outcome.failure.code, outcome.kind === 'permanent');
    // The End or Error event before the outcome: killed in between, the step is still
    // 'started', and the successor inspects it and writes the same-named event again.
    const ctx = this.eventContext(facts);
    if (outcome.kind === 'ended') {
      await this.emit(stepEndEvent(ctx, step, started.stepStartedAt, { ok: true, detail: outcome.detail }));
    } else {
      await this.emit(stepErrorEvent(ctx, step, started.stepStartedAt, outcome.failure, outcome.kind));
    }
    if (!(await this.recordOutcome(facts.name, started, recorded, leadership))) return;
    if (outcome.kind === 'ended') {
      log.info({ node: facts.name, step, detail: outcome.detail }, 'remediation step finished');
      return;
    }
    const { failure } = outcome;
    metrics.stepFailed(step, outcome.kind === 'inconclusive' ? 'inconclusive' : 'provider_error');
    log.warn({ node: facts.name, step, code: failure.code, message: failure.message, outcome: outcome.kind }, 'remediation step did not succeed');
  }

  /** Writes a step's outcome onto the state it started from, re-reading the Node on conflict. */
  private async recordOutcome(name: string, started: RemediationState, outcome: RemediationState, leadership: AbortSignal): Promise<boolean> {
    const { config, log } = this.deps;
    for (let attempt = 0; attempt < 5 && !leadership.aborted; attempt += 1) {
      if (attempt > 0) await delay(500 * 2 ** attempt, undefined, { signal: leadership }).catch(() => undefined);
      const node = await this.writer.read(name).catch(() => undefined);
      if (!node) continue;
      const current = parseRemediationState(node.metadata?.annotations?.[config.stateAnnotation]);
      if (current?.phase !== 'started' || current.stepStartedAt !== started.stepStartedAt || current.step !== started.step) {
        log.warn({ node: name }, 'the stored state moved on while the step ran; its outcome is not recorded');
        return false;
      }
      if (await this.writeState(node, outcome)) return true;
    }
    log.error({ node: name, step: started.step }, 'could not record the outcome of a step; the next pass asks the provider what became of it');
    return false;
  }

  private async applyQuarantine(node: V1Node, facts: NodeFacts, decision: QuarantineDecision, carried: Carried): Promise<void> {
    if (decision.kind !== 'add' && decision.kind !== 'remove') return;
    const { config, log } = this.deps;
    const key = config.quarantine.taintKey;
    const others: V1Taint[] = (node.spec?.taints ?? []).filter((t) => t.key !== key);
    const taints = decision.kind === 'add' ? [...others, { key, value: 'true', effect: 'NoSchedule' }] : others;
    const result = await this.writer.setTaints(node, taints, carried.annotations ? { annotations: takeCarried(carried) } : {});
    if (!this.remember(result, facts.name)) return;
    log.info({ node: facts.name, quarantine: decision.kind, why: decision.why }, 'quarantine taint changed');
    await this.emit(quarantineEvent(this.eventContext(facts), decision));
  }

  private async writeState(
    node: V1Node,
    state: RemediationState | undefined,
    labels?: Record<string, string | null>,
    carried?: Carried,
  ): Promise<V1Node | undefined> {
    const { config } = this.deps;
    const changes: MetadataChanges = {
      annotations: { ...takeCarried(carried), [config.stateAnnotation]: state ? serializeRemediationState(state) : null },
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
      if (!this.delivered.get(name)?.includes(version)) this.overlay.set(name, { node: slimNode(result.node, this.keep), at: this.now() });
      return true;
    }
    // Our own copy is what went stale (the watch may have shown our write before we kept it).
    if (result.conflict) this.overlay.delete(name);
    const level = result.conflict ? 'info' : 'warn';
    this.deps.log[level]({ node: name, error: result.error }, result.conflict ? 'node changed since the decision; deciding again next pass' : 'node write failed');
    return false;
  }

  /** The Node as we last know it: our own write until the informer has caught up with it. */
  private currentNode(name: string, now: number): V1Node | undefined {
    const cached = this.nodes.get(name);
    const ours = this.overlay.get(name);
    if (!ours) return cached;
    if (!cached || now - ours.at > overlayTtlMs || cached.metadata?.resourceVersion === ours.node.metadata?.resourceVersion) {
      this.overlay.delete(name);
      return cached;
    }
    return ours.node;
  }

  private onNodeChange(node: V1Node): void {
    const name = node.metadata?.name ?? '';
    const version = node.metadata?.resourceVersion ?? '';
    // Every replica remembers what it saw (Ready once, since when), not only the leader: a
    // follower that takes over must not mistake a node it watched being Ready for a never-ready one.
    const key = node.metadata?.uid || name;
    const seen = readNode(node, { now: this.now(), memory: this.memory.get(key) });
    if (seen.ok) this.memory.set(key, seen.memory);
    this.delivered.set(name, [...(this.delivered.get(name) ?? []), version].slice(-8));
    const ours = this.overlay.get(name);
    if (ours && ours.node.metadata?.resourceVersion === version) this.overlay.delete(name);
    if (this.leading) this.queue.add(name);
  }

  private forget(node: V1Node): void {
    const name = node.metadata?.name ?? '';
    this.overlay.delete(name);
    this.delivered.delete(name);
    this.setHeldBack(name, undefined);
    this.unreadableLogged.delete(name);
    this.platformEvents.delete(name);
    this.memory.delete(node.metadata?.uid || name);
    // The queue hands the name out once more; reconcile finds it gone and drops it from the index.
    if (this.leading) this.queue.add(name);
  }

  private onPlatformEvent(event: CoreV1Event): void {
    const seen = this.platformTrust.remediation(event);
    if (seen && seen.at > (this.platformEvents.get(seen.node) ?? 0)) this.platformEvents.set(seen.node, seen.at);
  }

  private eventContext(facts: NodeFacts): EventContext {
    return { node: { name: facts.name, uid: facts.uid }, config: this.deps.config, instance: this.instance, now: new Date(this.now()) };
  }

  private async emit(event: CoreV1Event): Promise<void> {
    const namespace = event.metadata?.namespace ?? 'default';
    try {
      await this.client.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, { body: event });
    } catch (err) {
      // A ladder event already written (by us before a retry, or by the leader before us).
      if (err instanceof KubeApiError && err.status === 409) return;
      this.deps.log.warn({ reason: event.reason, err: describeApiError(err) }, 'could not write event');
    }
  }
}
