import { existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../agent/config/schema.js';
import type { Probe, ProbeResult } from '../../agent/probes/probe.js';
import { buildProbes } from '../../agent/probes/registry.js';
import { probeReasons } from '../../common/contract.js';
import { ManagedProcess } from '../cluster/managedProcess.js';
import { runScript } from '../cluster/nodeBinaries.js';
import { onlyProbes } from '../support/onlyProbes.js';
import { eventually } from '../support/cliProcess.js';

/**
 * The runtime probe against a real containerd (v2.4, the real node's build), started here as
 * root with a root, state and socket of its own in a temporary folder: no pod ever runs, so
 * it touches neither the host's network nor its cgroups. The tests run in order on one
 * containerd: no CNI config, a CNI config, frozen, thawed, killed.
 */
const reasons = probeReasons.runtime;
const asRoot = process.getuid?.() === 0;

/** Where scripts/node-binaries.sh caches containerd, or why it cannot (it builds them when Go is there). */
async function containerdDir(): Promise<{ dir?: string; why?: string }> {
  if (!asRoot) return { why: 'needs root to run containerd' };
  try {
    return { dir: await runScript('scripts/node-binaries.sh') };
  } catch (err) {
    return { why: `no containerd binary: ${(err as Error).message}` };
  }
}
const binaries = await containerdDir();

/** containerd v2 (config version 3): the CRI plugin with everything under `dir`, the native snapshotter, no NRI. */
function containerdConfig(dir: string, cniBinDir: string): string {
  return `version = 3
root = "${dir}/root"
state = "${dir}/state"

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["${cniBinDir}"]
    conf_dir = "${dir}/cni"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "native"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`;
}

describe.skipIf(!binaries.dir)(`the runtime probe against a real containerd${binaries.why ? ` (skipped: ${binaries.why}; scripts/node-binaries.sh builds it)` : ''}`, () => {
  const work = mkdtempSync(join(tmpdir(), 'nodepulse-runtime-probe-'));
  const socketPath = join(work, 'containerd.sock');
  const timeoutMs = 1000;
  let containerd: ManagedProcess;
  let probe: Probe;

  /** One sample as the probe loop takes it: cancelled at the probe's sampleTimeoutMs. */
  const sample = (): Promise<ProbeResult> => probe.run(AbortSignal.timeout(probe.sampleTimeoutMs ?? probe.intervalMs));
  const sampleUntil = (what: string, reason: string) =>
    eventually(what, async () => {
      const result = await sample();
      return result.reason === reason ? result : undefined;
    }, 60_000, [], 200);

  beforeAll(async () => {
    mkdirSync(join(work, 'cni'));
    writeFileSync(join(work, 'containerd.toml'), containerdConfig(work, binaries.dir as string));
    containerd = new ManagedProcess(join(binaries.dir as string, 'containerd'), ['--config', join(work, 'containerd.toml')], join(work, 'containerd.log'));
    // The probe as the agent builds it: from its config, through the registry.
    const config = agentConfigSchema.parse({ probes: onlyProbes({ runtime: { enabled: true, socketPath, timeoutMs } }) });
    [probe] = buildProbes(config).probes as [Probe];
    await eventually('containerd to answer Status and Version on its socket', async () => ((await sample()).figures.runtimeName ? true : undefined), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${containerd.logTail()}`);
    });
  });

  afterAll(async () => {
    // A frozen containerd takes no SIGTERM; thaw it so stop() ends it (else SIGKILL after the grace).
    containerd?.signal('SIGCONT');
    await containerd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("reports ContainerRuntimeNetworkNotReady with containerd's own reason and message while no CNI network is configured", async () => {
    const result = await sample();
    expect(result).toMatchObject({
      healthy: false,
      reason: reasons.networkNotReady,
      figures: { socketPath, runtimeName: 'containerd', runtimeVersion: expect.stringMatching(/^v2\.4\./), runtimeApiVersion: 'v1', runtimeReady: true, networkReady: false },
    });
    expect(result.message).toMatch(/^RuntimeReady=true, NetworkReady=false \(NetworkPluginNotReady: Network plugin returns error: cni plugin not initialized\); containerd v2\.4\.\d+ at /);
  });

  it('reports ContainerRuntimeIsUp once a CNI network config appears (containerd loads it and never runs it: no pod starts)', async () => {
    writeFileSync(join(work, 'cni', '10-loopback.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'nodepulse-runtime-probe', plugins: [{ type: 'loopback' }] }));
    const result = await sampleUntil('ContainerRuntimeIsUp', reasons.healthy);
    expect(result).toMatchObject({ healthy: true, figures: { runtimeReady: true, networkReady: true } });
  });

  it('reports ContainerRuntimeUnresponsive, not a cancelled sample, when containerd is frozen (SIGSTOP)', async () => {
    containerd.signal('SIGSTOP');
    const result = await sample();
    expect(result).toMatchObject({ healthy: false, reason: reasons.unresponsive });
    expect(result.message).toMatch(new RegExp(`^the runtime at ${socketPath} is unresponsive: /runtime\\.v1\\.RuntimeService/(Status|Version) did not answer within ${timeoutMs} ms$`));
  });

  it('reports ContainerRuntimeIsUp again once containerd is thawed (SIGCONT)', async () => {
    containerd.signal('SIGCONT');
    await sampleUntil('ContainerRuntimeIsUp after SIGCONT', reasons.healthy);
  });

  it('reports ContainerRuntimeIsDown naming the socket and the errno once containerd is killed (SIGKILL)', async () => {
    containerd.signal('SIGKILL');
    await containerd.exited;
    // A killed containerd leaves its socket file behind: nothing listens on it.
    const refused = await sampleUntil('ContainerRuntimeIsDown', reasons.down);
    expect(refused.message).toBe(`cannot connect to ${socketPath}: ECONNREFUSED (nothing listens on it: the runtime is not running)`);
    if (existsSync(socketPath)) unlinkSync(socketPath);
    const missing = await sample();
    expect(missing).toMatchObject({ reason: reasons.down, message: `cannot connect to ${socketPath}: ENOENT (no such socket: the runtime is not running, or its socket is not mounted into the agent)` });
  });
});
