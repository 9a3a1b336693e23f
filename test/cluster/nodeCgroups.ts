import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlPlaneSetupError } from './binaries.js';
import { processAlive } from '../support/testNetwork.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
const PREFIX = 'nodepulse-node-';

/** The mounted cgroup v1 hierarchies (cpu, memory, ..., name=systemd), by folder. */
function hierarchies(): string[] {
  if (existsSync(join(CGROUP_ROOT, 'cgroup.controllers'))) {
    throw new ControlPlaneSetupError('this host mounts cgroup v2 only; the real node harness supports cgroup v1 hosts (cgroupfs) for now');
  }
  if (!existsSync(join(CGROUP_ROOT, 'memory'))) {
    throw new ControlPlaneSetupError(`the real node needs the cgroup v1 memory controller mounted at ${CGROUP_ROOT}/memory (CONFIG_MEMCG)`);
  }
  return readdirSync(CGROUP_ROOT)
    .map((name) => join(CGROUP_ROOT, name))
    .filter((dir) => statSync(dir).isDirectory() && existsSync(join(dir, 'cgroup.procs')));
}

/** Removes a cgroup folder and everything under it, deepest first; a cgroup whose last task is exiting answers EBUSY for a moment. */
async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeTree(join(dir, entry.name));
  }
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 100) throw new Error(`cannot remove cgroup ${dir}: ${(error as Error).message}`);
      await sleep(100);
    }
  }
}

/**
 * The node's own cgroup (the kubelet's cgroupRoot) in every hierarchy, named after this
 * process so that a run killed before its teardown is cleaned up by the next one.
 */
export class NodeCgroups {
  /** The kubelet's cgroupRoot, e.g. /nodepulse-node-1234. */
  readonly root = `/${PREFIX}${process.pid}`;

  create(): void {
    for (const hierarchy of hierarchies()) {
      for (const leftover of readdirSync(hierarchy).filter((n) => n.startsWith(PREFIX))) {
        const pid = Number(leftover.slice(PREFIX.length));
        if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) void removeTree(join(hierarchy, leftover)).catch(() => undefined);
      }
      const dir = join(hierarchy, this.root);
      mkdirSync(dir, { recursive: true });
      // A new cpuset has no CPUs or memory nodes; the kubelet's cgroups below it inherit these.
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (existsSync(join(dir, file)) && readFileSync(join(dir, file), 'utf8').trim() === '') {
          writeFileSync(join(dir, file), readFileSync(join(hierarchy, file), 'utf8'));
        }
      }
    }
  }

  /** cgroup folders of the node that still exist, in any hierarchy. */
  remaining(): string[] {
    return hierarchies()
      .map((hierarchy) => join(hierarchy, this.root))
      .filter((dir) => existsSync(dir));
  }

  /** Removes them all; call once the node's processes are gone. */
  async remove(): Promise<void> {
    for (const dir of this.remaining()) await removeTree(dir);
  }

  /** A cgroup v1 file of the node's tree, e.g. memory, `kubepods/.../memory.usage_in_bytes`. */
  file(controller: string, path: string): string {
    return join(CGROUP_ROOT, controller, this.root, path);
  }
}
