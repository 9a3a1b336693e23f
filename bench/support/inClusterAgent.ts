import { join } from 'node:path';
import type { TestDnsServer } from '../../test/support/dnsServer.js';
import { TestNetwork } from '../../test/support/testNetwork.js';
import { startAgent } from './agentProcess.js';
import { inClusterAgentConfig } from './benchAgentConfig.js';
import { BenchCluster } from './benchCluster.js';
import type { BenchProcess } from './benchProcess.js';
import { KubeletStandIn } from './kubeletStandIn.js';
import { freeLoopbackPort } from './loopbackPort.js';

/**
 * Everything an in-cluster agent needs on this machine: the test control plane, a local DNS
 * server and kubelet stand-in, and a test link for the API server's pod proxy (which refuses
 * loopback pod IPs) so the konnectivity path probe can reach the agent.
 */
export class InClusterBench {
  private constructor(
    readonly cluster: BenchCluster,
    readonly network: TestNetwork,
    readonly kubelet: KubeletStandIn,
    readonly dns: TestDnsServer,
  ) {}

  /** Starts what is missing around `dns`; stop() undoes it (not the DNS server). */
  static async start(dns: TestDnsServer, log: (line: string) => void): Promise<InClusterBench> {
    const kubelet = await KubeletStandIn.start();
    let cluster: BenchCluster | undefined;
    try {
      cluster = await BenchCluster.start(log);
      const network = new TestNetwork();
      network.create();
      return new InClusterBench(cluster, network, kubelet, dns);
    } catch (err) {
      await cluster?.stop();
      await kubelet.stop();
      throw err;
    }
  }

  /** An agent on its own Node object `bench-node-<index>`, every probe on, publishing as its ServiceAccount; `monitors` as in its config. */
  async startAgent(options: { index: number; dir: string; nodeFlags?: string[]; env?: NodeJS.ProcessEnv; monitors?: object; runtimeSocket?: string }): Promise<{
    process: BenchProcess;
    nodeName: string;
    baseUrl: string;
    query: string;
  }> {
    const nodeName = `bench-node-${options.index}`;
    const podName = `nodepulse-agent-bench-${options.index}`;
    const port = await freeLoopbackPort();
    const query = `incluster${options.index}.bench.test`;
    await this.cluster.createNode(nodeName);
    await this.cluster.createAgentPod({ name: podName, node: nodeName, port, podIP: this.network.hostAddress, hostIP: this.network.hostAddress });
    const mount = this.cluster.serviceAccountMount(join(options.dir, `serviceaccount-${options.index}`));
    const config = inClusterAgentConfig({
      nodeName,
      serviceAccountDir: mount.dir,
      address: this.network.hostAddress,
      port,
      dnsServer: this.dns.address,
      query,
      kubeletUrl: this.kubelet.url,
      podName,
      monitors: options.monitors,
      runtimeSocket: options.runtimeSocket,
    });
    const process = startAgent({
      name: `incluster${options.index}`,
      dir: options.dir,
      config,
      nodeFlags: options.nodeFlags,
      env: { ...mount.env, ...options.env },
    });
    return { process, nodeName, baseUrl: `http://${this.network.hostAddress}:${port}`, query };
  }

  async stop(): Promise<void> {
    this.network.destroy();
    await this.cluster.stop();
    await this.kubelet.stop();
  }
}
