import type { V1Lease } from '@kubernetes/client-node';
import { KubeApiError, type KubeClient } from '../common/kube/kubeClient.js';
import { LeaseConflict, LeaseInvalid, type LeaseRecord, type LeaseSnapshot, type LeaseStore } from './leaderElection.js';
import { describeApiError } from './nodeWrites.js';

/**
 * The leader Lease on the API server. Writes replace the whole object with the
 * resourceVersion that was read, so a concurrent writer makes ours fail with 409 Conflict.
 * Every call is cancelled when its signal aborts: the request itself is torn down (its
 * connection closed), so a renewal we gave up on cannot land later and be taken for a
 * success, and the call rejects with the signal's reason.
 */
export function kubeLeaseStore(client: KubeClient, namespace: string, name: string): LeaseStore {
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const path = `${collection}/${encodeURIComponent(name)}`;
  // The object as last read or written: the base of the next replace, so it keeps the
  // annotations (the pause switch) and labels others put there.
  let last: V1Lease | undefined;
  const call = async (signal: AbortSignal, method: string, at: string, body?: V1Lease): Promise<V1Lease> => {
    try {
      return await client.request<V1Lease>(method, at, { body, signal });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err;
    }
  };
  return {
    async read(signal) {
      try {
        last = await call(signal, 'GET', path);
        return snapshot(last);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
        last = undefined;
        return undefined;
      }
    },
    async write(record, annotations, resourceVersion, signal) {
      try {
        if (resourceVersion === undefined) {
          const body: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, annotations }, spec: spec(record) };
          last = await call(signal, 'POST', collection, body);
        } else {
          // A newer version than the caller's has been seen: the server would refuse it too.
          if (last?.metadata?.resourceVersion !== resourceVersion) throw new LeaseConflict(`lease ${namespace}/${name} changed since it was read`);
          const body: V1Lease = {
            ...last,
            metadata: { ...last.metadata, annotations: { ...last.metadata.annotations, ...annotations } },
            spec: spec(record),
          };
          last = await call(signal, 'PUT', path, body);
        }
        return snapshot(last);
      } catch (err) {
        if (err instanceof KubeApiError && (err.status === 409 || err.status === 404)) throw new LeaseConflict(`lease ${namespace}/${name} changed under us`);
        if (err instanceof KubeApiError && err.status === 422) throw new LeaseInvalid(`lease ${namespace}/${name} refused: ${describeApiError(err)}`);
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
