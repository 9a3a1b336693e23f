#!/usr/bin/env node
import { basename } from 'node:path';
import { flushOutput } from '../common/cliRunner.js';
import { AccessError, UsageError } from './doctor/errors.js';
import { parseDoctorArgs, usage as doctorUsage } from './doctor/options.js';
import { renderText } from './doctor/renderText.js';

/**
 * `nodepulse <command>`, the operator's tools. The same file is installed as
 * `kubectl-nodepulse`, which kubectl runs as the plugin `kubectl nodepulse` (with the words
 * after `nodepulse` as its arguments), so help and hints name whichever way it was called.
 */
const program = basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl nodepulse' : 'nodepulse';

const topUsage = `Usage: ${program} <command> [flags]

Commands:
  doctor    the AKS "examine node and pod health" guide's six steps in one run (${program} doctor --help)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') return print(process.stdout, topUsage, 0);
  if (command !== 'doctor') return print(process.stderr, `${command === undefined ? 'a command is needed' : `unknown command "${command}"`}\n\n${topUsage}`, 2);
  let parsed;
  try {
    parsed = parseDoctorArgs(rest);
  } catch (err) {
    return print(process.stderr, `${program} doctor: ${(err as Error).message}\nSee ${program} doctor --help.`, 2);
  }
  if (parsed.help) return print(process.stdout, doctorUsage(program), 0);
  const { options } = parsed;
  try {
    // The Kubernetes client is loaded only to talk to a cluster: --help and usage errors answer at once.
    const { runDoctor } = await import('./doctor/runDoctor.js');
    const report = await runDoctor(options);
    const text = options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderText(report, { details: options.verbose || options.node !== undefined, program });
    return print(process.stdout, text, report.exitCode);
  } catch (err) {
    const known = err instanceof UsageError || err instanceof AccessError;
    return print(process.stderr, `${program} doctor: ${known ? (err as Error).message : ((err as Error).stack ?? String(err))}`, 2);
  }
}

function print(stream: NodeJS.WriteStream, text: string, code: number): number {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
  return code;
}

main(process.argv.slice(2)).then((code) => {
  // Exit once the output is flushed: the API client's keep-alive sockets would hold the process open.
  void flushOutput().then(() => process.exit(code));
});
