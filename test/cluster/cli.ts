import { parseArgs } from 'node:util';
import { ControlPlaneSetupError } from './binaries.js';
import { type ControlPlaneProfile, startControlPlane } from './controlPlane.js';

const USAGE = 'usage: npm run cluster -- [--profile apiserver|full] [--nodes N]';

/** Parses the flags into validated options, or says what is wrong and how to call it. */
function parseOptions(argv: string[]): { profile: ControlPlaneProfile; nodes: number } {
  const { values } = parseArgs({
    args: argv,
    options: { profile: { type: 'string', default: 'apiserver' }, nodes: { type: 'string', default: '3' } },
  });
  const { profile } = values;
  if (profile !== 'apiserver' && profile !== 'full') {
    throw new ControlPlaneSetupError(`--profile must be "apiserver" or "full", got "${profile}"\n${USAGE}`);
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1) {
    throw new ControlPlaneSetupError(`--nodes must be a whole number of at least 1, got "${values.nodes}"\n${USAGE}`);
  }
  return { profile, nodes };
}

async function main(): Promise<void> {
  const { profile, nodes } = parseOptions(process.argv.slice(2));
  const plane = await startControlPlane({ profile, nodes });
  process.stdout.write(
    [
      `kubeconfig: ${plane.kubeconfig}`,
      `logs:       ${plane.workDir}/*.log`,
      ...(plane.nodeNames.length > 0 ? [`nodes:      ${plane.nodeNames.join(', ')}`] : []),
      '',
      `export KUBECONFIG=${plane.kubeconfig}`,
      '',
      'Press Ctrl-C to stop the control plane and remove its files.',
      '',
    ].join('\n'),
  );
  const shutdown = () => {
    process.stdout.write('stopping...\n');
    plane.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  const message = error instanceof ControlPlaneSetupError ? error.message : error instanceof Error ? error.stack : String(error);
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
});
