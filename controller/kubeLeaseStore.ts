import { ApiException, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { LeaseConflict, type LeaseRecord, type LeaseSnapshot, type LeaseStore } from './leaderElection.js';

/**
 * The leader Lease on the API server. Writes replace the whole object with the
 * resourceVersion that was read, so a concurrent writer makes ours fail with 409 Conflict.
 */
export function kubeLeaseStore(api: CoordinationV1Api, namespace: string, name: string): LeaseStore {
  return {
    async read() {
      try {
        return snapshot(await api.readNamespacedLease({ name, namespace }));
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return undefined;
        throw err;
      }
    },
    async write(record, resourceVersion) {
      try {
        if (resourceVersion === undefined) {
          return snapshot(await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: spec(record) } }));
        }
        // Read-modify-write keeps annotations (the pause switch) and labels others put there.
        const current = await api.readNamespacedLease({ name, namespace });
        const body: V1Lease = { ...current, metadata: { ...current.metadata, resourceVersion }, spec: spec(record) };
        return snapshot(await api.replaceNamespacedLease({ name, namespace, body }));
      } catch (err) {
        if (err instanceof ApiException && (err.code === 409 || err.code === 404)) throw new LeaseConflict(`lease ${namespace}/${name} changed under us`);
        throw err;
      }
    },
  };
}

/** MicroTime must go out with 6 fractional digits: the API server rejects toISOString()'s 3. */
function microTime(date: Date): Date {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

function spec(record: LeaseRecord): V1Lease['spec'] {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: microTime(record.acquireTime),
    renewTime: microTime(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}

function snapshot(lease: V1Lease): LeaseSnapshot {
  const s = lease.spec ?? {};
  const out: LeaseSnapshot = { resourceVersion: lease.metadata?.resourceVersion ?? '', annotations: lease.metadata?.annotations ?? {} };
  if (s.holderIdentity !== undefined) out.holderIdentity = s.holderIdentity;
  if (s.leaseDurationSeconds !== undefined) out.leaseDurationSeconds = s.leaseDurationSeconds;
  if (s.acquireTime) out.acquireTime = new Date(s.acquireTime);
  if (s.renewTime) out.renewTime = new Date(s.renewTime);
  if (s.leaseTransitions !== undefined) out.leaseTransitions = s.leaseTransitions;
  return out;
}
