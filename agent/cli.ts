#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { checkConfigFlag, loadAgentConfigIsolated } from './config/isolatedConfigLoader.js';
import { createLogger } from '../common/log.js';
import { onceExitCode, onceJson, renderTable, sampleOnce } from './onceReport.js';
import { InClusterWiring } from './inCluster.js';
import { describeInventory, nodeInventory } from './nodeInventory.js';
import { buildMonitors } from './monitors/registry.js';
import { buildProbes } from './probes/registry.js';
import { dropPrivileges } from './privileges.js';
import { flushOutput, runCli } from '../common/cliRunner.js';

const usage = `Usage: nodepulse-agent [--config FILE] [--once [--output table|json] | --check-config]

Runs the node health probes and serves /healthz, /readyz, /conditions, /metrics and /stream.
  --config FILE   YAML or JSON config (default: the embedded standalone defaults)
  --once          run every probe once and print the results; exit 0 when all is well, 1 when
                  the node has a problem, 3 when no node problem was found but a check could
                  not see the node (an agent problem, e.g. a wrong procRoot)
  --output FMT    with --once: table (default) or json
  --check-config  validate the config (and the rule and plugin files it names) and exit: 0 when
                  it is valid, 2 with every problem named (the DaemonSet's init container)
Environment: NODE_NAME, NODEPULSE_PROFILE, KUBECONFIG, LOG_LEVEL, and NODEPULSE__a__b=value
to set any config key (e.g. NODEPULSE__server__port=9000).`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string' },
        once: { type: 'boolean', default: false },
        'check-config': { type: 'boolean', default: false },
        output: { type: 'string', default: 'table' },
        help: { type: 'boolean', short: 'h', default: false },
        [checkConfigFlag.slice(2)]: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (args[checkConfigFlag.slice(2)]) {
    (await import('./config/configCheck.js')).printCheckedConfig(args.config);
    return 0;
  }
  if (args.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (args.output !== 'table' && args.output !== 'json') {
    process.stderr.write(`--output: "${args.output}" is not a format; use table or json\n`);
    return 2;
  }
  const config = loadAgentConfigIsolated(args.config);
  if (args['check-config']) {
    process.stdout.write(`${args.config ?? 'the built-in defaults'}: valid\n`);
    return 0;
  }
  const log = createLogger('nodepulse-agent', process.env, args.once ? process.stderr : undefined);
  const wiring = config.publish.enabled ? await InClusterWiring.create(config, log) : undefined;
  const { probes, skipped } = buildProbes(config, wiring?.probeFactories);

  if (args.once) {
    const agent = new Agent(config, probes, log, { routes: wiring?.routes });
    if (wiring) await agent.server.listen();
    const startedAt = new Date();
    const [results, inventory] = await Promise.all([sampleOnce(probes, (probe) => agent.loop.sample(probe)), nodeInventory()]);
    await agent.stop();
    wiring?.stop();
    process.stdout.write(
      args.output === 'json'
        ? `${JSON.stringify(onceJson(results, skipped, inventory, startedAt), null, 2)}\n`
        : `${describeInventory(inventory)}\n\n${renderTable(results, skipped)}`,
    );
    return onceExitCode(results);
  }

  if (skipped.length > 0) log.info({ skipped }, 'probes that need the API server are skipped in standalone mode (publish.enabled: false)');
  const monitors = buildMonitors(config, log);
  for (const monitor of monitors) monitor.openPrivileged?.();
  const identity = dropPrivileges(config.security);
  if (identity) log.info(identity, 'dropped root: running as security.runAsUser, without capabilities');
  const agent = new Agent(config, probes, log, { routes: wiring?.routes, readiness: wiring ? [wiring.readiness] : [], monitors, monitorsAfterAdoption: wiring !== undefined });
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await agent.start();
  log.info({ probes: probes.map((p) => p.name), profile: config.profile, publish: config.publish.enabled }, 'nodepulse agent running');
  let signal: string;
  try {
    // The local endpoint already serves while the publisher waits for the API server.
    await Promise.race([wiring?.attach(agent), stopped]);
    signal = await stopped;
    log.info({ signal }, 'shutting down');
  } finally {
    wiring?.stop();
    await agent.stop();
  }
  // A read of /dev/kmsg waits in the kernel for the next record on a libuv thread, which
  // process.exit() would wait to join: end by the signal that asked, its default action, once
  // the last log lines are out.
  if (monitors.length > 0) {
    await flushOutput();
    process.kill(process.pid, signal);
  }
  return 0;
}

runCli('nodepulse-agent', main, ['ConfigError', 'KubeCredentialsError', 'NodeNotFoundError', 'ListenError', 'PrivilegeDropError']);
