import { parseArgs } from 'node:util';
import { requiredAccess } from './access.js';
import { UsageError } from './errors.js';
import { stepIds, stepTitles } from './report.js';

export interface DoctorOptions {
  kubeconfig?: string;
  context?: string;
  selector?: string;
  node?: string;
  verbose: boolean;
  output: 'text' | 'json';
  /** The agents' publish.heartbeatSeconds: a condition older than two of these is out of date. */
  agentHeartbeatSeconds: number;
  /** How far back Events count, ms. */
  eventWindowMs: number;
  pageSize: number;
}

/** What each step reads, for --help. */
const stepReads: Record<(typeof stepIds)[number], string> = {
  nodes: 'Ready, NetworkUnavailable; nodepulse CPU, memory, PID, disk space pressure; auto-repair ladder and events',
  tunnel: 'the konnectivity-agent Deployment and pods (absent: direct mode); nodepulse KonnectivityProblem per node',
  dns: 'nodepulse DNSProblem: which checks fail together says CoreDNS, Azure DNS or routing',
  kubelet: "Ready's reason and heartbeat, the kubelet's pressure conditions and Warning events; nodepulse KubeletProblem",
  problemDetector: 'node-problem-detector conditions, whether the nodepulse agent reports, its temporary problems',
  diskIO: 'nodepulse DiskIOProblem: a disk at its IOPS or MB/s cap (IOThrottled), IO stall',
};

export function usage(program: string): string {
  const steps = stepIds.map((id, i) => `  ${i + 1}. ${stepTitles[id]}\n     ${stepReads[id]}`).join('\n');
  const access = requiredAccess.map((a) => `${a.verbs} ${a.resource}${a.namespace ? ` (${a.namespace})` : ''}`).join('; ');
  return `Usage: ${program} doctor [flags]

Runs the AKS guide "examine node and pod health" in one command, read-only, against the
current kubeconfig: per step and per node a verdict (ok, warning, problem, unknown), the
evidence and the next action. Without nodepulse installed, steps 1, 2 and 4 still run from what
Kubernetes reports, and each step says what nodepulse would add.

The six steps:
${steps}

Flags:
  --kubeconfig FILE             kubeconfig (default: $KUBECONFIG, then ~/.kube/config)
  --context NAME                kubeconfig context (default: the current one)
  -l, --selector SELECTOR       only nodes with these labels, e.g. agentpool=nodepool1
  --node NAME                   one node, every finding with its evidence
  -v, --verbose                 after the summary, the evidence and next action of every finding
  -o, --output text|json        json: the whole report for scripts (apiVersion nodepulse.io/doctor/v1)
  --since DURATION              how far back Events count: 90s, 30m, 2h (default 1h, as long as
                                the API server keeps them)
  --agent-heartbeat-seconds N   the agents' publish.heartbeatSeconds (default 300): a condition
                                not re-stated for two of these is out of date
  --page-size N                 objects per list request (default 500)
  -h, --help                    this text

Needs: ${access}.
Exit code: 0 nothing wrong, 1 a problem found, 2 a usage or access error (the missing RBAC
verb named) or anything else that kept the doctor from judging.`;
}

export type ParsedCommand = { help: true } | { help: false; options: DoctorOptions };

export function parseDoctorArgs(args: string[]): ParsedCommand {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        selector: { type: 'string', short: 'l' },
        node: { type: 'string' },
        verbose: { type: 'boolean', short: 'v', default: false },
        output: { type: 'string', short: 'o', default: 'text' },
        since: { type: 'string', default: '1h' },
        'agent-heartbeat-seconds': { type: 'string', default: '300' },
        'page-size': { type: 'string', default: '500' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return { help: true };
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`--output: "${values.output}" is not a format; use text or json`);
  for (const flag of ['kubeconfig', 'context', 'selector', 'node'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag}: the value is empty; give one or leave the flag out`);
  }
  const options: DoctorOptions = {
    verbose: values.verbose,
    output: values.output,
    agentHeartbeatSeconds: positiveInteger('--agent-heartbeat-seconds', values['agent-heartbeat-seconds'], 86_400),
    eventWindowMs: duration('--since', values.since),
    pageSize: positiveInteger('--page-size', values['page-size'], 5000),
  };
  if (values.kubeconfig !== undefined) options.kubeconfig = values.kubeconfig;
  if (values.context !== undefined) options.context = values.context;
  if (values.selector !== undefined) options.selector = values.selector;
  if (values.node !== undefined) options.node = values.node;
  if (options.node !== undefined && options.selector !== undefined) throw new UsageError('--node and --selector: give one of them; --node already names the node');
  return { help: false, options };
}

function positiveInteger(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw new UsageError(`${flag}: "${text}" is not a whole number from 1 to ${max}`);
  return n;
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

function duration(flag: string, text: string): number {
  const m = /^(\d+)([smh])$/.exec(text);
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration; use a number and s, m or h, e.g. 30m`);
  const ms = Number(m[1]) * (units[m[2] as string] as number);
  if (ms < 1000) throw new UsageError(`${flag}: "${text}" is shorter than a second`);
  return ms;
}
