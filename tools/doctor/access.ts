import { konnectivityDeployment } from '../../common/contract.js';

/** The doctor's reads are get and list only; these are all it needs (for --help, errors and the RBAC test). */
export interface Access {
  verbs: string;
  resource: string;
  /** Null: cluster-wide. */
  namespace: string | null;
}

export const requiredAccess: readonly Access[] = [
  { verbs: 'get, list', resource: 'nodes', namespace: null },
  { verbs: 'list', resource: 'events', namespace: 'default' },
  { verbs: 'get', resource: 'deployments.apps', namespace: konnectivityDeployment.namespace },
  { verbs: 'list', resource: 'pods', namespace: konnectivityDeployment.namespace },
];

export const grantCommand =
  'kubectl create clusterrole nodepulse-doctor --verb=get,list --resource=nodes,events,pods,deployments.apps && kubectl create clusterrolebinding nodepulse-doctor --clusterrole=nodepulse-doctor --user=<you>';

