import { dnsCheckNames, dnsOutcomeReasons } from '../../../common/contract.js';
import type { ConditionView } from '../clusterFacts.js';
import { agentItem, combine, nodepulseMeasures, stepReport, type DoctorContext } from '../judging.js';
import type { StepReport } from '../report.js';

/**
 * Step 3: DNS the guide's way. The agent's DNSProblem names the first failing check in its
 * reason (`ClusterDNSServfail`) and every failing one in its message
 * (`ClusterDNS (kubernetes.default.svc.cluster.local A via 10.0.0.10:53): servfail ...; ...`);
 * which checks fail together says where to look: cluster DNS alone is CoreDNS, everything
 * is the network.
 */
export interface FailingCheck {
  /** The check's name without a resolver number (NodeDNS2 -> NodeDNS). */
  check: string;
  /** The DNS client's outcome word (servfail, timeout, publicAnswer, ...), when the message gives it. */
  outcome?: string;
}

/** The failing checks a DNSProblem condition names, from its message and its reason. */
export function failingChecks(c: Pick<ConditionView, 'reason' | 'message'>): FailingCheck[] {
  const found = new Map<string, FailingCheck>();
  for (const m of (c.message ?? '').matchAll(/(?:^|; )([A-Za-z][\w-]*) \([^)]*\): (\w+)/g)) {
    const check = baseName(m[1] as string);
    if (!found.has(check)) found.set(check, { check, outcome: m[2] as string });
  }
  const reason = c.reason ?? '';
  const suffix = Object.values(dnsOutcomeReasons).find((s) => reason.endsWith(s) && reason.length > s.length);
  if (suffix) {
    const check = baseName(reason.slice(0, -suffix.length));
    if (!found.has(check)) found.set(check, { check });
  }
  return [...found.values()];
}

function baseName(name: string): string {
  return name.startsWith(dnsCheckNames.node) ? dnsCheckNames.node : name;
}

const coreDnsLogs = 'kubectl -n kube-system logs -l k8s-app=kube-dns';

/** The guide's reading of which checks fail together. */
export function dnsAdvice(c: Pick<ConditionView, 'reason' | 'message'>): string {
  const failing = failingChecks(c);
  const fails = (name: string) => failing.some((f) => f.check === name);
  const advice: string[] = [];
  const onNode = fails(dnsCheckNames.upstream) || fails(dnsCheckNames.node);
  if (fails(dnsCheckNames.cluster) && !onNode) {
    advice.push(`${dnsCheckNames.cluster} fails while ${dnsCheckNames.upstream} passes: suspect CoreDNS — ${coreDnsLogs}`);
  } else if (fails(dnsCheckNames.cluster) && onNode) {
    advice.push('cluster DNS and the node\'s own resolution both fail: suspect routing, firewall or ports (UDP and TCP 53), not CoreDNS');
  } else if (fails(dnsCheckNames.upstream)) {
    advice.push('the node cannot resolve through Azure DNS 168.63.129.16: allow UDP and TCP 53 to it in NSGs, routes and the firewall');
  } else if (fails(dnsCheckNames.node)) {
    advice.push("the node's resolvers (/etc/resolv.conf) fail: check the VNet's custom DNS servers and the routes to them");
  }
  const apiServer = failing.find((f) => f.check === dnsCheckNames.apiServer);
  if (apiServer?.outcome === 'publicAnswer' || c.reason === `${dnsCheckNames.apiServer}${dnsOutcomeReasons.publicAnswer}`) {
    advice.push(
      'the API server FQDN resolves to a public address but a private cluster needs its private IP: link the private DNS zone to the VNet, or have the custom DNS server forward to 168.63.129.16',
    );
  } else if (apiServer) {
    advice.push('the node cannot resolve the API server FQDN: a custom DNS server on the VNet must resolve it (forward to 168.63.129.16)');
  }
  if (advice.length === 0) {
    const names = failing.map((f) => f.check).join(', ') || 'a DNS check';
    advice.push(`${names} fails: the condition's message names the server and the answer`);
  }
  return advice.join('; ');
}

export function dnsStep(ctx: DoctorContext): StepReport {
  return stepReport('dns', ctx, (node) => combine(node.name, [agentItem(node, 'dns', ctx, dnsAdvice)]), {
    ...(nodepulseMeasures(ctx, 'dns')
      ? {}
      : {
          withNodepulse:
            "Kubernetes reports no DNS from the nodes; nodepulse's dns probe resolves, from every node, the API server FQDN (a private address in a private cluster), microsoft.com through Azure DNS 168.63.129.16 and the cluster DNS",
        }),
    okSummary: (n) => `${n} resolve`,
  });
}
