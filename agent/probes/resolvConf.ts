import { open } from 'node:fs/promises';
import { isIP } from 'node:net';

/** The resolvers the node's libc uses, as read from resolv.conf on each sample (DHCP rewrites it). */
export interface ResolvConf {
  path: string;
  /** IP addresses from `nameserver` lines, in file order. */
  nameservers: string[];
  /** Why the file gives no resolver to check (unreadable, no usable nameserver); null when it does. */
  problem: string | null;
}

/** resolv.conf is a few lines; anything this large is not one. */
const MAX_BYTES = 64 * 1024;

/**
 * Like libc: `#` or `;` starts a comment line, the keyword is the first word, and a nameserver
 * value that is not an IP address is skipped. Returns the addresses and the skipped values.
 */
export function parseResolvConf(text: string): { nameservers: string[]; skipped: string[] } {
  const nameservers: string[] = [];
  const skipped: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== 'nameserver') continue;
    const value = words[1];
    if (value === undefined || value.startsWith('#') || value.startsWith(';')) continue;
    if (isIP(value) === 0) skipped.push(value);
    else nameservers.push(value);
  }
  return { nameservers, skipped };
}

export async function readResolvConf(path: string): Promise<ResolvConf> {
  let text: string;
  try {
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(MAX_BYTES + 1);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_BYTES) {
        return { path, nameservers: [], problem: `${path} is larger than ${MAX_BYTES} bytes; it is not a resolv.conf` };
      }
      text = buffer.toString('utf8', 0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
    return {
      path,
      nameservers: [],
      problem: `${path} ${why}, so the node has no resolver to check; fix the file or set probes.dns.resolvConf`,
    };
  }
  const { nameservers, skipped } = parseResolvConf(text);
  if (nameservers.length > 0) return { path, nameservers, problem: null };
  const ignored = skipped.length > 0 ? ` (ignored values that are not IP addresses: ${skipped.join(', ')})` : '';
  return { path, nameservers, problem: `${path} has no usable nameserver line${ignored}` };
}
