/**
 * The real node's addresses, in 198.18.0.0/15 (RFC 2544's range for tests) with the block
 * allocation of test/support/testNetwork.ts: each process owns the /29 blocks pid*8+0 ... +7 and
 * TestNetwork hands them out from +0 upwards; the node takes the top three, which a process
 * running a real node never reaches with TestNetwork: +5 is the veth between the host and the
 * node, +6 and +7 together (a /28) the node's pods. Nothing else is routed anywhere.
 */
export interface NodeAddresses {
  /** The host end of the veth: the API server listens here for the node. */
  hostAddress: string;
  /** The node end: the kubelet's node IP, InternalIP, and the address of hostNetwork pods. */
  nodeAddress: string;
  /** Prefix length of the link's block. */
  linkPrefix: number;
  /** The pods' subnet (CIDR) behind the node's bridge. */
  podSubnet: string;
  /** The bridge's address: the pods' next hop to the API server. */
  podGateway: string;
}

const BLOCKS = 16384;
const BLOCK_SIZE = 8;
const TEST_RANGE_BASE = 198 * 2 ** 24 + 18 * 2 ** 16;

function dotted(address: number): string {
  return [24, 16, 8, 0].map((shift) => (address >>> shift) & 255).join('.');
}

function blockStart(pid: number, index: number): number {
  return TEST_RANGE_BASE + ((pid * BLOCK_SIZE + index) % BLOCKS) * BLOCK_SIZE;
}

export function nodeAddresses(pid: number = process.pid): NodeAddresses {
  const link = blockStart(pid, 5);
  const pods = blockStart(pid, 6);
  return {
    hostAddress: dotted(link + 1),
    nodeAddress: dotted(link + 2),
    linkPrefix: 29,
    podSubnet: `${dotted(pods)}/28`,
    podGateway: dotted(pods + 1),
  };
}
