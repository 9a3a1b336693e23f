import { parseArgs } from 'node:util';
import { ControlPlaneSetupError } from './binaries.js';
import { type ControlPlaneProfile, startControlPlane } from './controlPlane.js';
import { NODE_IMAGE, startNodeCluster } from './nodeCluster.js';

const USAGE = 'usage: npm run cluster -- [--profile apiserver|full|node] [--nodes N]';

/** `node`: a real node (kubelet + containerd running the project's image) beside N kwok nodes. */
type Profile = ControlPlaneProfile | 'node';

/** Parses the flags into validated options, or says what is wrong and how to call it. */
function parseOptions(argv: string[]): { profile: Profile; nodes: number } {
  const { values } = parseArgs({
    args: argv,
    options: { profile: { type: 'string', default: 'apiserver' }, nodes: { type: 'string', default: '3' } },
  });
  const { profile } = values;
  if (profile !== 'apiserver' && profile !== 'full' && profile !== 'node') {
    throw new ControlPlaneSetupError(`--profile must be "apiserver", "full" or "node", got "${profile}"\n${USAGE}`);
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1) {
    throw new ControlPlaneSetupError(`--nodes must be a whole number of at least 1, got "${values.nodes}"\n${USAGE}`);
  }
  return { profile, nodes };
}

async function main(): Promise<void> {
  const { profile, nodes } = parseOptions(process.argv.slice(2));
  const cluster = profile === 'node' ? await startNodeCluster({ kwokNodes: nodes }) : undefined;
  const plane = cluster?.plane ?? (await startControlPlane({ profile: profile as ControlPlaneProfile, nodes }));
  const stop = cluster?.stop ?? (() => plane.stop());
  process.stdout.write(
    [
      `kubeconfig: ${plane.kubeconfig}`,
      `logs:       ${plane.workDir}/*.log`,
      ...(plane.nodeNames.length > 0 ? [`nodes:      ${plane.nodeNames.join(', ')}`] : []),
      ...(cluster
        ? [
            `real node:  ${cluster.node.name} at ${cluster.node.addresses.nodeAddress} (logs ${cluster.node.dir}/*.log), image ${NODE_IMAGE}`,
            '            kubectl apply -k test/manifests/real-node   runs the shipped manifests on it',
          ]
        : []),
      '',
      `export KUBECONFIG=${plane.kubeconfig}`,
      '',
      'Press Ctrl-C to stop the control plane and remove its files.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  // Every signal, not just the first: a second Ctrl-C (or `timeout` passing one on) during the stop
  // would otherwise exit at once and leave the real node's cgroups to the next run's clean-up.
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  const message = error instanceof ControlPlaneSetupError ? error.message : error instanceof Error ? error.stack : String(error);
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
});
