import type { Logger } from '../common/log.js';
import type { Agent } from './agent.js';
import type { AgentConfig } from './config/schema.js';
import { ConfigError } from '../common/config/configError.js';
import { AgentKubeApi } from './kube/agentKubeApi.js';
import { KubeClient } from '../common/kube/kubeClient.js';
import { inClusterCredentials, type KubeCredentials } from '../common/kube/kubeCredentials.js';
import { KonnectivityEcho, echoRoute } from './probes/konnectivityEcho.js';
import { KonnectivityProbe } from './probes/konnectivityProbe.js';
import type { ProbeFactory } from './probes/registry.js';
import { components, type ProbeName } from '../common/contract.js';
import { ConditionPublisher } from './publish/conditionPublisher.js';
import { EventRecorder } from './publish/eventRecorder.js';
import { RebootOnRequest } from './reboot/rebootOnRequest.js';
import type { RouteHandler } from './server/healthServer.js';

export const agentComponent = components.agent;

/**
 * What the agent adds when it publishes to a cluster: the API client, the probes that need
 * it, the echo route they call back, and the publisher. Built before the Agent so that the
 * probes and routes exist when it starts; attached after.
 */
export class InClusterWiring {
  readonly api: AgentKubeApi;
  readonly echo: KonnectivityEcho;
  readonly probeFactories: Partial<Record<ProbeName, ProbeFactory>>;
  readonly routes: Record<string, RouteHandler>;
  private publisher: ConditionPublisher | undefined;
  private reboot: RebootOnRequest | undefined;

  /** Off-cluster (a kubeconfig) loads the kubeconfig parser; in a pod only the ServiceAccount mount is read. */
  static async create(config: AgentConfig, log: Logger): Promise<InClusterWiring> {
    if (!config.nodeName) {
      throw new ConfigError(['nodeName: empty; set NODE_NAME from the downward API (fieldRef: spec.nodeName) or nodeName in the config'], 'publish.enabled');
    }
    const credentials = config.kubeconfig
      ? (await import('../common/kube/kubeconfigFile.js')).kubeconfigCredentials(config.kubeconfig)
      : inClusterCredentials(process.env, config.serviceAccountDir);
    return new InClusterWiring(config, credentials, log);
  }

  private constructor(
    private readonly config: AgentConfig,
    credentials: KubeCredentials,
    private readonly log: Logger,
  ) {
    this.api = new AgentKubeApi(new KubeClient(credentials));
    this.echo = new KonnectivityEcho(config.probes.konnectivity.timeoutMs * 3);
    const k = config.probes.konnectivity;
    if (k.enabled && !k.podName) {
      throw new ConfigError(['probes.konnectivity.podName: empty; set POD_NAME from the downward API (fieldRef: metadata.name) or disable the probe'], 'publish.enabled');
    }
    this.probeFactories = { konnectivity: (c) => new KonnectivityProbe(c.probes.konnectivity, this.api, this.echo, c.server.port) };
    this.routes = { [echoRoute]: this.echo.handle };
  }

  /** A readiness gate: the first publish has landed. */
  readonly readiness = (): string | undefined =>
    this.publisher?.hasSynced ? undefined : 'conditions not yet published to the API server';

  async attach(agent: Agent): Promise<ConditionPublisher> {
    const p = this.config.publish;
    const events = new EventRecorder(
      this.api,
      {
        nodeName: this.config.nodeName,
        component: agentComponent,
        burst: p.eventBurst,
        perMinute: p.eventsPerMinute,
        dedupWindowMs: 10 * 60_000,
        maxQueued: 100,
      },
      this.log,
    );
    const publisher = new ConditionPublisher(
      this.api,
      agent.engine,
      events,
      {
        nodeName: this.config.nodeName,
        heartbeatMs: p.heartbeatSeconds * 1000,
        heartbeatJitter: p.heartbeatJitter,
        backoffBaseMs: 500,
        backoffMaxMs: p.backoffMaxSeconds * 1000,
      },
      this.log,
    );
    this.publisher = publisher;
    await publisher.adopt();
    agent.loop.on('observation', (observation) => publisher.onObservation(observation));
    agent.loop.on('events', (events) => publisher.onEvents(events));
    publisher.start();
    // After adoption: a replayed kernel-log lookback meets the conditions already on the Node.
    agent.loop.startMonitors();
    if (this.config.reboot.enabled) {
      this.reboot = new RebootOnRequest(this.api, this.config.reboot, this.config.nodeName, this.config.procRoot, events, this.log);
      this.reboot.start();
    }
    return publisher;
  }

  stop(): void {
    this.reboot?.stop();
    this.publisher?.stop();
    this.api.client.close();
  }
}
