import { ConfigError } from '../../common/config/configError.js';
import type { AgentConfig, DnsConfig } from '../config/schema.js';
import { parseDnsServer, type DnsServerAddress } from './dnsClient.js';
import type { DnsQuestion } from './dnsReply.js';
import { parseCidr, PrivateAddresses, type Cidr } from './privateAddresses.js';
import type { ResolvConf } from './resolvConf.js';
import { dnsCheckNames } from '../../common/contract.js';

/**
 * Which DNS checks a sample runs. Config is validated once into settings (a bad server, name
 * or CIDR is a ConfigError naming the field); resolv.conf is read on every sample, so the
 * checks that go through the node's resolvers are expanded per sample by `buildDnsChecks`.
 */

export type DnsExpectation = 'answer' | 'private';

export interface DnsCheck {
  name: string;
  server: DnsServerAddress;
  question: DnsQuestion;
  expect: DnsExpectation;
}

/** A built-in check that has no server to go to (resolv.conf unreadable or empty). */
export interface UnrunnableDnsCheck {
  name: string;
  question: DnsQuestion;
  problem: string;
}

export interface DnsCheckPlan {
  checks: DnsCheck[];
  unrunnable: UnrunnableDnsCheck[];
}

/** A check sent to the resolvers of resolv.conf: through `every` one of them, or the `first`. */
interface ResolverCheck {
  name: string;
  question: DnsQuestion;
  expect: DnsExpectation;
  through: 'every' | 'first';
}

export interface DnsSettings {
  intervalMs: number;
  timeoutMs: number;
  resolvConf: string;
  privateAddresses: PrivateAddresses;
  /** Checks whose server is known from config. */
  fixedChecks: DnsCheck[];
  resolverChecks: ResolverCheck[];
}

const FIELD = 'probes.dns';

/** Validates the dns section for `profile`; throws a ConfigError listing every bad field. */
export function dnsSettingsFromConfig(profile: AgentConfig['profile'], dns: DnsConfig): DnsSettings {
  const issues: string[] = [];
  const server = (text: string, field: string): DnsServerAddress | undefined => {
    try {
      return parseDnsServer(text);
    } catch (err) {
      issues.push(`${FIELD}.${field}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const name = (text: string, field: string): string => {
    const problem = dnsNameProblem(text);
    if (problem) issues.push(`${FIELD}.${field}: "${text}" ${problem}`);
    return text;
  };

  const cidrs: Cidr[] = [];
  dns.privateCidrs.forEach((text, i) => {
    const cidr = parseCidr(text);
    if (typeof cidr === 'string') issues.push(`${FIELD}.privateCidrs[${i}]: ${cidr}`);
    else cidrs.push(cidr);
  });

  const fixedChecks: DnsCheck[] = [];
  const resolverChecks: ResolverCheck[] = [];
  const fixed = (check: Omit<DnsCheck, 'server'>, address: DnsServerAddress | undefined) => {
    if (address) fixedChecks.push({ ...check, server: address });
  };

  const seen = new Map<string, number>();
  dns.checks.forEach((check, i) => {
    const first = seen.get(check.name);
    if (first !== undefined) {
      issues.push(`${FIELD}.checks[${i}].name: "${check.name}" is also the name of checks[${first}]; give each check its own name`);
    }
    seen.set(check.name, first ?? i);
    if (check.expect === 'private' && check.type !== 'A' && check.type !== 'AAAA') {
      issues.push(`${FIELD}.checks[${i}].expect: "private" needs type A or AAAA (addresses), not ${check.type}`);
    }
    const question = { name: name(check.query, `checks[${i}].query`), type: check.type };
    fixed({ name: check.name, question, expect: check.expect }, server(check.server, `checks[${i}].server`));
  });

  // Built-in checks; their fields are validated even when unused, since a bad value is a typo.
  const upstream = server(dns.azureDNS, 'azureDNS');
  const cluster = server(dns.clusterDNS, 'clusterDNS');
  const upstreamQuery = name(dns.upstreamQuery, 'upstreamQuery');
  const clusterQuery = `kubernetes.default.svc.${name(dns.clusterDomain, 'clusterDomain').replace(/\.$/, '')}`;
  const defaultQuery = name(dns.defaultQuery, 'defaultQuery');
  const apiServerFQDN = dns.apiServerFQDN === undefined ? undefined : name(dns.apiServerFQDN, 'apiServerFQDN');

  if (dns.checks.length === 0 && profile === 'azure') {
    fixed({ name: dnsCheckNames.upstream, question: { name: upstreamQuery, type: 'A' }, expect: 'answer' }, upstream);
    fixed({ name: dnsCheckNames.cluster, question: { name: clusterQuery, type: 'A' }, expect: 'answer' }, cluster);
    if (apiServerFQDN !== undefined) {
      resolverChecks.push({
        name: dnsCheckNames.apiServer,
        question: { name: apiServerFQDN, type: 'A' },
        expect: dns.privateCluster ? 'private' : 'answer',
        through: 'first',
      });
    }
  } else if (dns.checks.length === 0) {
    // The root has no address; its NS set is what every recursive resolver can always answer.
    const type = defaultQuery === '.' ? 'NS' : 'A';
    resolverChecks.push({ name: dnsCheckNames.node, question: { name: defaultQuery, type }, expect: 'answer', through: 'every' });
  }

  if (issues.length > 0) throw new ConfigError(issues, FIELD);
  return {
    intervalMs: dns.intervalSeconds * 1000,
    timeoutMs: dns.timeoutMs,
    resolvConf: dns.resolvConf,
    privateAddresses: new PrivateAddresses(cidrs),
    fixedChecks,
    resolverChecks,
  };
}

/** The checks of one sample: the fixed ones plus the resolver checks sent to resolv.conf's servers. */
export function buildDnsChecks(settings: DnsSettings, resolvConf: ResolvConf): DnsCheckPlan {
  const checks = [...settings.fixedChecks];
  const unrunnable: UnrunnableDnsCheck[] = [];
  for (const check of settings.resolverChecks) {
    if (resolvConf.problem !== null) {
      unrunnable.push({ name: check.name, question: check.question, problem: resolvConf.problem });
      continue;
    }
    const nameservers = check.through === 'first' ? resolvConf.nameservers.slice(0, 1) : resolvConf.nameservers;
    nameservers.forEach((host, i) => {
      // One resolver keeps the plain name; several are numbered in file order (NodeDNS1, NodeDNS2).
      const name = nameservers.length === 1 ? check.name : `${check.name}${i + 1}`;
      checks.push({ name, server: parseDnsServer(host), question: check.question, expect: check.expect });
    });
  }
  return { checks, unrunnable };
}

/** Why `name` is not a DNS name the probe can send, or null. `.` is the root. */
function dnsNameProblem(name: string): string | null {
  if (name === '.') return null;
  const bare = name.replace(/\.$/, '');
  if (bare.length === 0 || bare.length > 253) return 'is not a DNS name; use 1 to 253 characters, e.g. microsoft.com';
  const bad = bare.split('.').find((label) => !/^[A-Za-z0-9_-]{1,63}$/.test(label));
  if (bad !== undefined) {
    return `has the label "${bad}"; each dot-separated label is 1 to 63 letters, digits, '-' or '_'`;
  }
  return null;
}
