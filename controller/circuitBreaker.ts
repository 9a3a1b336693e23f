import type { CircuitBreakerConfig } from './config/controllerConfig.js';

/**
 * Whether too much of the fleet is unhealthy at once for any repair to be safe. Many nodes
 * failing together is the signature of a network partition or an API-server outage, where
 * rebooting nodes fixes nothing and can take the whole fleet down (Cluster API's maxUnhealthy,
 * Karpenter's 20% do the same).
 *
 * Small clusters: a percentage alone either blocks everything (3 nodes x 20% = 0.6 tolerates no
 * unhealthy node at all) or, rounded up, lets a 2-node cluster reboot half its capacity. We
 * tolerate `minUnhealthyAllowed` (default 1) unhealthy nodes whatever the share, so a 3-node
 * pool can repair one node but never two, and we never act when *every* counted node is
 * unhealthy: from inside the cluster that is indistinguishable from a partition. The one
 * exception is a pool of a single node (`repairSingleNode`, on by default): there "every node"
 * is one node, the very case AKS's rules repair, and an API-server outage is already caught
 * by the cache-freshness gate, which stops all decisions while the watch is down.
 *
 * "Unhealthy" is what the detection rules say (NotReady for notReadySeconds, silent for
 * noStatusSeconds, ...), not merely failing: one kubelet blip must not open the breaker of a
 * small pool.
 */
export interface BreakerVerdict {
  open: boolean;
  /** How many unhealthy nodes are tolerated for this fleet size. */
  allowed: number;
  why: string;
}

export function evaluateBreaker(nodes: number, unhealthy: number, config: CircuitBreakerConfig): BreakerVerdict {
  // Integers only: 29% of 100 is 29, where (29 / 100) * 100 is 28.999...
  const byShare = Math.floor((config.maxUnhealthyPercent * nodes) / 100);
  const floor = Math.max(config.minUnhealthyAllowed, byShare);
  const allowed = config.maxUnhealthyCount === undefined ? floor : Math.min(floor, config.maxUnhealthyCount);
  const rule = `${config.maxUnhealthyPercent}% of ${nodes}, at least ${config.minUnhealthyAllowed}${
    config.maxUnhealthyCount === undefined ? '' : `, at most ${config.maxUnhealthyCount}`
  }`;
  const lone = nodes === 1 && config.repairSingleNode;
  if (unhealthy > 0 && unhealthy >= nodes && !lone) {
    return {
      open: true,
      allowed,
      why: `all ${nodes} counted node(s) are unhealthy: a partition or API-server outage looks the same, so nothing is repaired`,
    };
  }
  if (unhealthy > allowed) {
    return { open: true, allowed, why: `${unhealthy} of ${nodes} nodes are unhealthy, more than the ${allowed} allowed (${rule})` };
  }
  return { open: false, allowed, why: `${unhealthy} of ${nodes} nodes unhealthy, ${allowed} allowed (${rule})` };
}
