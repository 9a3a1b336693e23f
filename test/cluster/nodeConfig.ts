import { stringify } from 'yaml';
import type { NodeAddresses } from './nodeNetwork.js';
import type { NodePki } from './nodePki.js';

/** Paths inside the node's mount namespace where its components talk to each other. */
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** The kubelet's root: a tmpfs of the node's own (see nodeNamespaces.ts). */
export const KUBELET_ROOT = '/var/lib/kubelet';

/**
 * containerd v2's configuration (version 3) for the node: the CRI plugin with runc (cgroupfs,
 * the host is cgroup v1), overlayfs, the CNI plugins of the cache, and the pause image built
 * here pinned as the sandbox image. Root and state are containerd's defaults, which the node's
 * mount namespace backs with the run's own folder and a tmpfs.
 */
export function containerdConfig(options: { runc: string; cniBinDir: string; cniConfDir: string; optDir: string; pauseImage: string }): string {
  return `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "${CONTAINERD_SOCKET}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${options.optDir}"

# Nothing here uses NRI; off, so it opens no socket and reads no plugin folders.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # This VM lacks CAP_SYS_RESOURCE: lowering a container's oom_score_adj below containerd's own
  # fails, and every sandbox with it ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "${options.runc}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["${options.cniBinDir}"]
    conf_dir = "${options.cniConfDir}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${options.pauseImage}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`;
}

/**
 * The pods' network: a bridge on the node with host-local addresses from the node's pod
 * subnet. The only route a pod gets is to the API server's address on the host, through the
 * bridge: no default route, so anything else is unreachable from a pod too.
 */
export function cniConfig(addresses: NodeAddresses): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'nodepulse-test',
      plugins: [
        {
          type: 'bridge',
          bridge: 'np0',
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: addresses.podSubnet, gateway: addresses.podGateway }]],
            routes: [{ dst: `${addresses.hostAddress}/32` }],
          },
        },
      ],
    },
    null,
    2,
  );
}

/** The kubelet's KubeletConfiguration for this host and its node. */
export function kubeletConfig(options: { cgroupRoot: string; pki: NodePki; resolvConf: string }): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // The host is cgroup v1, which the kubelet refuses by default since 1.35.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    // Every cgroup of the node's pods under one of its own, which teardown removes.
    cgroupRoot: options.cgroupRoot,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    readOnlyPort: 0,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: options.pki.caFile },
    },
    authorization: { mode: 'Webhook' },
    // No cluster DNS: ClusterFirst pods fall back to this file, which names only the node's own
    // loopback, where the tests' DNS server runs; no real resolver is ever asked.
    resolvConf: options.resolvConf,
    clusterDomain: 'cluster.local',
    rotateCertificates: false,
    serializeImagePulls: false,
    maxPods: 20,
    // The disk-space fault fills the kubelet's small tmpfs past the agent's 90%: the kubelet's
    // own threshold sits below that, so the fault is the agent's to see, not an eviction.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'imagefs.available': '2%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
  });
}

/** The kubelet's kubeconfig: its client certificate as system:node:<name>. */
export function kubeletKubeconfig(options: { server: string; serverCaFile: string; pki: NodePki; nodeName: string }): string {
  const user = `system:node:${options.nodeName}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'nodepulse-test', cluster: { server: options.server, 'certificate-authority': options.serverCaFile } }],
    users: [{ name: user, user: { 'client-certificate': options.pki.kubelet.cert, 'client-key': options.pki.kubelet.key } }],
    contexts: [{ name: user, context: { cluster: 'nodepulse-test', user } }],
    'current-context': user,
  });
}
