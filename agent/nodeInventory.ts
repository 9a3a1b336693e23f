/**
 * What this machine is, for the header of `--once`: OS, kernel, CPU, memory and disks, from
 * systeminformation. Loaded only there: the inventory is static, and the long-running agent
 * reads its hot-path figures from /proc itself.
 */
export interface NodeInventory {
  hostname: string;
  os: string;
  kernel: string;
  cpu: string;
  cores: number;
  memoryMiB: number;
  disks: Array<{ name: string; sizeGiB: number }>;
}

export async function nodeInventory(): Promise<NodeInventory> {
  const { default: si } = await import('systeminformation');
  const [os, cpu, mem, devices] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), si.blockDevices()]);
  return {
    hostname: os.hostname,
    os: `${os.distro} ${os.release}`.trim(),
    kernel: os.kernel,
    cpu: `${cpu.manufacturer} ${cpu.brand}`.trim(),
    cores: cpu.cores,
    memoryMiB: Math.round(mem.total / 1048576),
    disks: devices.filter((d) => d.type === 'disk' && d.size > 0).map((d) => ({ name: d.name, sizeGiB: Math.round(d.size / 1073741824) })),
  };
}

export function describeInventory(n: NodeInventory): string {
  const disks = n.disks.map((d) => `${d.name} ${d.sizeGiB} GiB`).join(', ') || 'none found';
  return `${n.hostname}: ${n.os}, kernel ${n.kernel}, ${n.cpu} x${n.cores}, ${n.memoryMiB} MiB memory, disks: ${disks}`;
}
