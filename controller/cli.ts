#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { runCli } from '../common/cliRunner.js';
import { ConfigError } from '../common/config/configError.js';
import { defaultCredentials } from '../common/kube/defaultCredentials.js';
import { KubeClient } from '../common/kube/kubeClient.js';
import { createLogger } from '../common/log.js';
import { loadControllerConfig } from './config/controllerConfig.js';
import { ControllerLoop } from './controllerLoop.js';
import { FleetEvents } from './fleetEvents.js';
import { FleetPage } from './fleetPage.js';
import { FleetRows } from './fleetRows.js';
import { kubeLeaseStore } from './kubeLeaseStore.js';
import { LeaderElector, runLeaderElection } from './leaderElection.js';
import { ControllerMetrics } from './metrics.js';
import { startMetricsServer } from './metricsServer.js';
import { describeApiError } from './nodeWrites.js';
import { platformEventWatches } from './platformEvents.js';
import { createProvider } from './providers/createProvider.js';

const usage = `Usage: nodepulse-controller [--config FILE] [--metrics-port N] [--metrics-address ADDR]

Watches Nodes and repairs unhealthy ones the way AKS node auto-repair does (reboot, reimage,
redeploy), with a circuit breaker, in-flight limits and leader election. The provider is
dry-run unless the config says azure or agent.
  --config FILE          YAML or JSON config (default: built-in defaults)
  --metrics-port N       port of /metrics, /healthz, /readyz and the fleet page /fleet (default from config: 20259)
  --metrics-address A    bind address of that endpoint (default from config: 0.0.0.0)
Environment: KUBECONFIG, LOG_LEVEL, POD_NAME (leader identity), AZURE_CLIENT_ID,
AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, and NODEPULSE__a__b=value for any config key.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string' },
        'metrics-port': { type: 'string' },
        'metrics-address': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const config = loadControllerConfig(args.config);
  if (args['metrics-port'] !== undefined) {
    const port = Number(args['metrics-port']);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new ConfigError([`--metrics-port: "${args['metrics-port']}" is not a port; use 0-65535`], 'command line');
    }
    config.metrics.port = port;
  }
  if (args['metrics-address'] !== undefined) config.metrics.address = args['metrics-address'];

  const log = createLogger('nodepulse-controller');
  // One client, so every call shares a few kept-alive TLS connections: one per watch (the
  // Nodes, the platform's Events, the fleet page's Events) and a few for lists, writes and the Lease.
  const watches = 2 + platformEventWatches(config.platform).length;
  const client = new KubeClient(defaultCredentials(config.kubeconfig), { maxSockets: watches + 4 });

  const metrics = new ControllerMetrics();
  const election = config.leaderElection;
  const timing = {
    leaseDurationMs: election.leaseDurationSeconds * 1000,
    renewDeadlineMs: election.renewDeadlineSeconds * 1000,
    retryPeriodMs: election.retryPeriodSeconds * 1000,
  };
  // Unique per process, so a restarted pod never mistakes its predecessor's lease for its own.
  const identity = `${process.env.POD_NAME || hostname()}_${randomUUID().slice(0, 8)}`;
  const provider = createProvider(config, client);
  // The fleet page's rows are fed from the Node informer as objects arrive (no request of its own).
  const fleetRows = new FleetRows(config.stateAnnotation, config.quarantine.taintKey, config.needsHumanLabel);
  const loop: ControllerLoop = new ControllerLoop(client, {
    config,
    onNode: (node) => fleetRows.observe(node),
    provider,
    metrics,
    log,
    isLeader: () => elector.isLeader(),
    leaseAnnotations: () => elector.annotations,
    remember: (key, value) => {
      elector.remember(key, value);
    },
    instance: identity,
  });
  const elector: LeaderElector = new LeaderElector(
    kubeLeaseStore(client, election.namespace, election.leaseName),
    identity,
    timing,
    Date.now,
    {
      onError: (err) => log.warn({ err: describeApiError(err) }, 'leader lease read or renew failed'),
      onNewLeader: (leader) => log.info({ leader, self: leader === identity }, 'leader observed'),
      // A replica whose caches stopped moving hands the Lease to one whose caches did not.
      canLead: (): boolean => loop.isCurrent(),
    },
  );
  let started = false;
  const fleetEvents = new FleetEvents(client, config.events.reportingComponent, log);
  const fleetPage = new FleetPage({ config, rows: fleetRows, snapshot: () => loop.fleetSnapshot(), ownEvents: () => fleetEvents.entries() });
  const endpoint = await startMetricsServer(metrics, {
    address: config.metrics.address,
    port: config.metrics.port,
    notReady: () => (started ? loop.whyNotCurrent() : 'node cache not synced yet'),
    pages: (path, req, res) => fleetPage.handle(path, req, res),
  });
  log.info({ identity, provider: provider.name, metricsPort: endpoint.port, paused: config.paused }, 'nodepulse controller starting');

  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort('SIGTERM'));
  process.once('SIGINT', () => stop.abort('SIGINT'));
  try {
    await loop.start();
    started = true;
    fleetEvents.start();
    await runLeaderElection(elector, timing, stop.signal, (leadership) => {
      metrics.setLeader(true);
      leadership.addEventListener('abort', () => metrics.setLeader(false), { once: true });
      void loop.lead(leadership);
    });
    log.info({ signal: String(stop.signal.reason) }, 'shutting down; leader lease released');
  } finally {
    fleetPage.close();
    await Promise.all([loop.stop(), fleetEvents.stop()]);
    await endpoint.close();
    client.close();
  }
  return 0;
}

runCli('nodepulse-controller', main, ['ConfigError', 'KubeCredentialsError']);
