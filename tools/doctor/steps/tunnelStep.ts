import { konnectivityDeployment, probeReasons } from '../../../common/contract.js';
import { deploymentEvidence, podEvidence } from '../clusterFacts.js';
import { agentItem, combine, nodepulseMeasures, stepReport, type DoctorContext } from '../judging.js';
import type { Finding, StepReport } from '../report.js';

/**
 * Step 2: the API server -> kubelet path (logs, exec, port-forward) runs through the
 * konnectivity-agent tunnel. Kubernetes tells whether its Deployment is Ready; nodepulse's
 * konnectivity probe tells, per node, whether the API server can actually reach it.
 */
const { namespace, name } = konnectivityDeployment;
const restartCommand = `kubectl rollout restart deploy ${name} -n ${namespace}`;
const logsCommand = `kubectl logs -l app=${name} -n ${namespace} --tail=50`;
/** Restarts of one pod from which the tunnel counts as unstable. */
const restartWarning = 3;

const advice: Record<string, string> = {
  [probeReasons.konnectivity.apiServerUnreachable]:
    'this node cannot reach the API server: user-defined routes through an NVA or Azure Firewall must allow egress to the API server FQDN on 443',
  [probeReasons.konnectivity.nodeUnreachable]: `the API server cannot reach this node through the tunnel: ${restartCommand}, then ${logsCommand} should show "Connect to" server=...`,
  [probeReasons.konnectivity.timeout]: `requests through the tunnel time out: ${logsCommand}; check egress to the API server on 443, then ${restartCommand}`,
  [probeReasons.konnectivity.tls]: 'TLS to the API server fails: a proxy or firewall is inspecting TLS, or the cluster CA changed; exempt the API server FQDN from TLS inspection',
  [probeReasons.konnectivity.wrongEndpoint]: 'the API server reached another endpoint than this node\'s agent: a stale pod IP or overlapping address ranges; check the node\'s pod CIDR routes',
  [probeReasons.konnectivity.forbidden]: 'RBAC refuses the probe\'s pods/proxy request: re-apply the nodepulse-agent ClusterRole',
};

export function tunnelStep(ctx: DoctorContext): StepReport {
  const measured = nodepulseMeasures(ctx, 'konnectivity');
  return stepReport('tunnel', ctx, (node) => combine(node.name, [agentItem(node, 'konnectivity', ctx, (c) => advice[c.reason ?? ''] ?? `${logsCommand}; ${restartCommand}`)]), {
    fleet: [deploymentFinding(ctx)],
    ...(measured
      ? {}
      : {
          withNodepulse:
            "nodepulse's konnectivity probe sends, from every node, a request the API server has to carry back through the tunnel to that node, so a tunnel that is up but does not reach one node shows on that node",
        }),
    okSummary: (n) => `API server reaches ${n}`,
  });
}

function deploymentFinding(ctx: DoctorContext): Finding {
  const { deployment, pods } = ctx.facts.konnectivity;
  if (!deployment) {
    return {
      node: null,
      verdict: 'ok',
      summary: `no ${name} Deployment in ${namespace}: direct mode (API Server VNet Integration), the API server reaches nodes without a tunnel`,
      evidence: [],
      next: [],
    };
  }
  const evidence = [deploymentEvidence(deployment), ...pods.map(podEvidence)];
  const restarts = pods.reduce((sum, p) => sum + p.restarts, 0);
  const lastTermination = pods.find((p) => p.lastTermination)?.lastTermination;
  const restartText = restarts > 0 ? `, pods restarted ${restarts} time(s)${lastTermination ? ` (last: ${lastTermination})` : ''}` : '';
  const summary = `${name} ${deployment.ready}/${deployment.desired} ready${restartText}`;
  if (deployment.desired > 0 && deployment.ready < deployment.desired) {
    return {
      node: null,
      verdict: 'problem',
      summary,
      evidence,
      next: [`check egress rules: the nodes must reach the API server on 443 (routes through an NVA or Azure Firewall), then ${restartCommand}`, `${logsCommand} shows its options and "Connect to" server=... lines once connected`],
    };
  }
  if (deployment.desired === 0) {
    return { node: null, verdict: 'warning', summary: `${summary}: scaled to 0, so logs, exec and port-forward cannot reach any node`, evidence, next: [`kubectl scale deploy ${name} -n ${namespace} --replicas=2`] };
  }
  if (pods.some((p) => p.restarts >= restartWarning)) {
    return { node: null, verdict: 'warning', summary, evidence, next: [`${logsCommand} --previous shows why it restarted`] };
  }
  return { node: null, verdict: 'ok', summary, evidence, next: [] };
}
