import type { Logger } from '../common/log.js';
import type { AgentConfig } from './config/schema.js';
import { ConditionEngine, type ConditionRule } from './conditions/conditionEngine.js';
import { conditionTypeByProbe, type ProbeName } from '../common/contract.js';
import { AgentMetrics } from './metrics/agentMetrics.js';
import type { Monitor } from './monitors/monitor.js';
import { ProbeLoop } from './probeLoop.js';
import type { Probe } from './probes/probe.js';
import { HealthServer, type HealthSource, type RouteHandler } from './server/healthServer.js';

/** Condition rules for the probes that run (each probe's hysteresis from config) and the monitors'. */
export function conditionRules(config: AgentConfig, probes: readonly Probe[], monitors: readonly Monitor[] = []): ConditionRule[] {
  const probeRules = probes.map((probe) => {
    const name = probe.name as ProbeName;
    const settings = config.probes[name];
    return {
      type: conditionTypeByProbe[name],
      probe: name,
      failureThreshold: settings.failureThreshold,
      recoveryThreshold: settings.recoveryThreshold,
    };
  });
  return [...probeRules, ...monitors.flatMap((monitor) => monitor.rules)];
}

export interface AgentOptions {
  routes?: Record<string, RouteHandler>;
  /** Extra readiness gates (e.g. the publisher's first sync). */
  readiness?: Array<() => string | undefined>;
  /** Streaming sources (the kernel log). */
  monitors?: readonly Monitor[];
  /**
   * The publisher adopts the Node's conditions first and then starts the monitors
   * (loop.startMonitors), so a replayed lookback meets them; standalone, start() does.
   */
  monitorsAfterAdoption?: boolean;
}

/**
 * The running agent: probe loop -> condition engine -> local endpoint and metrics. The
 * publisher, when enabled, subscribes to the same loop; nothing here knows about it.
 */
export class Agent {
  readonly engine: ConditionEngine;
  readonly loop: ProbeLoop;
  readonly metrics = new AgentMetrics();
  readonly server: HealthServer;

  constructor(
    readonly config: AgentConfig,
    probes: readonly Probe[],
    private readonly log: Logger,
    private readonly options: AgentOptions = {},
  ) {
    const monitors = options.monitors ?? [];
    this.engine = new ConditionEngine(conditionRules(config, probes, monitors), Date.now(), monitors.find((m) => m.boot)?.boot);
    this.loop = new ProbeLoop(probes, this.engine, log, monitors);
    const nodeName = config.nodeName || 'standalone';
    const readiness = options.readiness ?? [];
    const source: HealthSource = {
      nodeName,
      conditions: () => this.engine.list(),
      results: () => this.loop.latestResults(),
      lastProgressAt: () => this.loop.lastProgressAt,
      notReadyReasons: () => {
        const sampled = new Set(this.loop.latestResults().map((r) => r.probe));
        const pending = probes.filter((p) => !sampled.has(p.name)).map((p) => `${p.name} probe has not completed a sample yet`);
        return [...pending, ...readiness.map((gate) => gate()).filter((r): r is string => r !== undefined)];
      },
      metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.text() }),
    };
    this.server = new HealthServer(
      source,
      {
        address: config.server.address,
        port: config.server.port,
        podAddress: config.server.podAddress,
        stallMs: config.server.stallSeconds * 1000,
        routes: options.routes,
      },
      log,
    );
    this.loop.on('result', (result) => this.metrics.recordResult(result));
    this.loop.on('observation', (observation) => {
      this.metrics.recordCondition(observation.condition, observation.events);
      this.server.broadcast(observation.condition, observation.events);
      for (const event of observation.events) {
        if (event.kind === 'transition') {
          this.log.info({ condition: observation.condition.type, status: observation.condition.status, reason: event.reason }, event.message);
        }
      }
    });
    this.loop.on('events', (events) => {
      this.metrics.recordEvents(events);
      this.server.broadcast(undefined, events);
      for (const event of events) this.log.info({ reason: event.reason }, event.message);
    });
  }

  async start(): Promise<void> {
    for (const condition of this.engine.list()) this.metrics.recordCondition(condition, []);
    await this.server.listen();
    this.loop.start();
    if (!this.options.monitorsAfterAdoption) this.loop.startMonitors();
  }

  async stop(): Promise<void> {
    this.loop.stop();
    this.metrics.stop();
    await this.server.close();
  }
}
