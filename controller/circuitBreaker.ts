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
 * unhealthy: from inside the cluster that is indistinguishable from a partition, and on a
 * single-node cluster it would mean rebooting the node that runs the controller (AKS does not
 * repair single-node pools either).
 */
export interface BreakerVerdict {
  open: boolean;
  /** How many unhealthy nodes are tolerated for this fleet size. */
  allowed: number;
  why: string;
}

export function evaluateBreaker(nodes: number, unhealthy: number, config: CircuitBreakerConfig): BreakerVerdict {
  const byShare = Math.floor((config.maxUnhealthyPercent / 100) * nodes);
  const floor = Math.max(config.minUnhealthyAllowed, byShare);
  const allowed = config.maxUnhealthyCount === undefined ? floor : Math.min(floor, config.maxUnhealthyCount);
  const rule = `${config.maxUnhealthyPercent}% of ${nodes}, at least ${config.minUnhealthyAllowed}${
    config.maxUnhealthyCount === undefined ? '' : `, at most ${config.maxUnhealthyCount}`
  }`;
  if (unhealthy > 0 && unhealthy >= nodes) {
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
