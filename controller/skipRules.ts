import { foreignTaints } from '../common/contract.js';
import type { ControllerConfig } from './config/controllerConfig.js';
import type { NodeFacts } from './nodeHealth.js';

/** Node-level reasons never to remediate, from AKS's own list plus an opt-out. */
export type NodeSkipRule = 'shutdown-taint' | 'to-be-deleted' | 'never-ready' | 'opted-out';

/** A node on its way out of the cluster: never repaired, and not counted by the circuit breaker. */
export function isLeaving(node: NodeFacts): boolean {
  return node.taints.some((t) => t.key === foreignTaints.shutdown || t.key === foreignTaints.toBeDeleted);
}

export function isOptedOut(node: NodeFacts, config: ControllerConfig): boolean {
  const { key, value } = config.optOut;
  return node.labels[key] === value || node.annotations[key] === value;
}

/**
 * `continuing`: the node already has a ladder under way, so whoever started it saw the node
 * Ready once; a replica that took over since cannot tell from the Node alone and must not
 * take it for a never-ready node.
 */
export function nodeSkipRule(node: NodeFacts, config: ControllerConfig, continuing: boolean): { rule: NodeSkipRule; why: string } | undefined {
  if (node.taints.some((t) => t.key === foreignTaints.shutdown)) {
    return { rule: 'shutdown-taint', why: `taint ${foreignTaints.shutdown}: the VM is shut down, not broken` };
  }
  if (node.taints.some((t) => t.key === foreignTaints.toBeDeleted)) {
    return { rule: 'to-be-deleted', why: `taint ${foreignTaints.toBeDeleted}: the cluster autoscaler is removing it` };
  }
  if (isOptedOut(node, config)) {
    return { rule: 'opted-out', why: `opted out by ${config.optOut.key}=${config.optOut.value}` };
  }
  if (!node.everReady && !continuing) {
    return { rule: 'never-ready', why: 'never became Ready after registering: a provisioning problem, not one a reboot fixes' };
  }
  return undefined;
}
