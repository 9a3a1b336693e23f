import { dnsOutcomeReasons, probeReasons } from '../../common/contract.js';
import type { AgentConfig, DnsConfig } from '../config/schema.js';
import { formatDnsServer, queryDns, type DnsOutcome } from './dnsClient.js';
import { buildDnsChecks, dnsSettingsFromConfig, type DnsCheck, type DnsSettings } from './dnsChecks.js';
import type { PrivateAddresses } from './privateAddresses.js';
import { result, type Figures, type Probe, type ProbeResult } from './probe.js';
import { readResolvConf } from './resolvConf.js';

/**
 * Resolves every configured name through its server, all checks in parallel, once per sample.
 * A failing check names itself in the reason (`ClusterDNSTimeout`), so an operator can tell
 * "cluster DNS is down" (pods affected) from "the node cannot resolve" (routing, custom DNS).
 */

/** The client's outcomes plus what the probe judges from a good reply. */
export type DnsCheckOutcome = DnsOutcome | 'noAnswer' | 'publicAnswer' | 'noResolver';

export interface DnsCheckResult {
  name: string;
  server: string;
  query: string;
  type: string;
  outcome: DnsCheckOutcome;
  rcode: string | null;
  latencyMs: number | null;
  answers: string[];
  transport: 'udp' | 'tcp' | null;
  detail: string;
  /** Replies to another query (id or question) that were ignored while waiting. */
  discarded: number;
}

const REASON_SUFFIX: Record<Exclude<DnsCheckOutcome, 'ok'>, string> = dnsOutcomeReasons;

/** Room for reading resolv.conf and a loaded event loop beyond the checks' own timeout. */
const SAMPLE_MARGIN_MS = 1000;

export class DnsProbe implements Probe {
  readonly name = 'dns';
  readonly intervalMs: number;
  readonly sampleTimeoutMs: number;
  private readonly settings: DnsSettings;

  /** Throws a ConfigError when the dns section has a bad server, name or CIDR. */
  constructor(profile: AgentConfig['profile'], dns: DnsConfig) {
    this.settings = dnsSettingsFromConfig(profile, dns);
    this.intervalMs = this.settings.intervalMs;
    // The checks run in parallel, each bounded by timeoutMs: their verdicts come before this.
    this.sampleTimeoutMs = this.settings.timeoutMs + SAMPLE_MARGIN_MS;
  }

  async run(signal: AbortSignal): Promise<ProbeResult> {
    const startedAt = Date.now();
    const needsResolvers = this.settings.resolverChecks.length > 0;
    const resolvConf = needsResolvers
      ? await readResolvConf(this.settings.resolvConf)
      : { path: this.settings.resolvConf, nameservers: [], problem: null };
    const plan = buildDnsChecks(this.settings, resolvConf);
    const answered = await Promise.all(plan.checks.map((check) => this.runCheck(check, signal)));
    const unrunnable = plan.unrunnable.map(
      (check): DnsCheckResult => ({
        name: check.name,
        server: resolvConf.path,
        query: check.question.name,
        type: check.question.type,
        outcome: 'noResolver',
        rcode: null,
        latencyMs: null,
        answers: [],
        transport: null,
        detail: check.problem,
        discarded: 0,
      }),
    );
    const checks = [...answered, ...unrunnable];
    const figures: Figures = {
      checks: Object.fromEntries(checks.map(({ name, ...figure }) => [name, { ...figure }])),
    };
    const failing = checks.filter((check) => check.outcome !== 'ok');
    const first = failing[0];
    if (!first) {
      return result(this.name, startedAt, { healthy: true, reason: probeReasons.dns.healthy, message: healthyMessage(checks) }, figures);
    }
    const reason = `${first.name}${REASON_SUFFIX[first.outcome as Exclude<DnsCheckOutcome, 'ok'>]}`;
    return result(this.name, startedAt, { healthy: false, reason, message: failing.map(describe).join('; ') }, figures);
  }

  private async runCheck(check: DnsCheck, signal: AbortSignal): Promise<DnsCheckResult> {
    const reply = await queryDns(check.server, check.question, { timeoutMs: this.settings.timeoutMs, signal });
    const judged = judge(check, reply.outcome, reply.answers, this.settings.privateAddresses);
    return {
      name: check.name,
      server: formatDnsServer(check.server),
      query: check.question.name,
      type: check.question.type,
      outcome: judged.outcome,
      rcode: reply.rcode,
      latencyMs: reply.latencyMs,
      answers: reply.answers,
      transport: reply.transport,
      detail: judged.detail ?? reply.detail,
      discarded: reply.discarded,
    };
  }
}

/** A NOERROR reply still fails when it has no record of the asked type, or a public address where a private one is due. */
function judge(
  check: DnsCheck,
  outcome: DnsOutcome,
  answers: string[],
  privateAddresses: PrivateAddresses,
): { outcome: DnsCheckOutcome; detail?: string } {
  if (outcome !== 'ok') return { outcome };
  if (answers.length === 0) return { outcome: 'noAnswer', detail: `NOERROR with no ${check.question.type} record` };
  if (check.expect === 'private') {
    const exposed = answers.filter((address) => !privateAddresses.contains(address));
    if (exposed.length > 0) {
      return {
        outcome: 'publicAnswer',
        detail: `resolves to public ${exposed.join(', ')}; a private cluster needs RFC 1918, ULA or probes.dns.privateCidrs addresses`,
      };
    }
  }
  return { outcome: 'ok' };
}

function describe(check: DnsCheckResult): string {
  const timing = check.latencyMs === null ? '' : ` after ${check.latencyMs} ms`;
  return `${check.name} (${check.query} ${check.type} via ${check.server}): ${check.outcome}${timing}: ${check.detail}`;
}

function healthyMessage(checks: DnsCheckResult[]): string {
  const parts = checks.map((check) => `${check.name} ${check.latencyMs} ms (${check.answers.slice(0, 3).join(', ')})`);
  return `${checks.length} DNS check(s) answered: ${parts.join('; ')}`;
}
