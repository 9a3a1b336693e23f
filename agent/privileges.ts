import { readFileSync, readdirSync } from 'node:fs';
import type { AgentConfig } from './config/schema.js';

/** The agent could not become the configured user, or still holds a capability afterwards: it must not run on. */
export class PrivilegeDropError extends Error {
  override name = 'PrivilegeDropError';
}

export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

/** The effective capability sets of every thread of this process (hex, as /proc prints them). */
function threadCapabilities(procSelf: string): Map<string, { uid: string; capEff: string }> {
  const threads = new Map<string, { uid: string; capEff: string }>();
  for (const tid of readdirSync(`${procSelf}/task`)) {
    const status = readFileSync(`${procSelf}/task/${tid}/status`, 'utf8');
    threads.set(tid, { uid: /^Uid:\s*(.*)$/m.exec(status)?.[1] ?? '?', capEff: /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '?' });
  }
  return threads;
}

/**
 * Becomes `security.runAsUser` when started as root, after the privileged opens (the kernel
 * log). setuid(2) from root to another user clears every capability (capabilities(7), "Effect
 * of user ID changes"), and glibc applies it to all threads, libuv's pool included: checked
 * here per thread, not assumed. Not root: nothing to drop (a standalone run, a non-root image).
 */
export function dropPrivileges(security: AgentConfig['security'], procSelf = '/proc/self'): Identity | undefined {
  if (security.runAsUser === null || process.getuid?.() !== 0) return undefined;
  const target: Identity = { uid: security.runAsUser, gid: security.runAsGroup ?? security.runAsUser, groups: security.supplementaryGroups };
  try {
    process.setgroups?.(target.groups);
    process.setgid?.(target.gid);
    process.setuid?.(target.uid);
  } catch (err) {
    throw new PrivilegeDropError(`cannot become uid ${target.uid} gid ${target.gid} (security.runAsUser/runAsGroup): ${(err as Error).message}`);
  }
  for (const [tid, thread] of threadCapabilities(procSelf)) {
    if (thread.capEff !== '0000000000000000' || !thread.uid.split(/\s+/).every((id) => id === String(target.uid))) {
      throw new PrivilegeDropError(`thread ${tid} still runs as uid ${thread.uid} with capabilities ${thread.capEff} after dropping to uid ${target.uid}; refusing to run on`);
    }
  }
  return target;
}
