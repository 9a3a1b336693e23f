import { BlockList, isIP } from 'node:net';

/** RFC 1918 and IPv6 unique local addresses: where a private cluster's API server lives. */
const BUILT_IN_PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'];

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** Parses `address/prefix`; returns why it is not one, for the caller to name the field. */
export function parseCidr(text: string): Cidr | string {
  const parts = text.trim().split('/');
  const [address, prefixText] = parts;
  const family = isIP(address ?? '');
  if (parts.length !== 2 || (family !== 4 && family !== 6) || !/^\d{1,3}$/.test(prefixText ?? '')) {
    return `"${text}" is not a CIDR block; write address/prefix, e.g. 10.240.0.0/16 or fd00::/8`;
  }
  const prefix = Number(prefixText);
  const maxPrefix = family === 4 ? 32 : 128;
  if (prefix > maxPrefix) return `"${text}" has prefix /${prefix}; an IPv${family} prefix is at most /${maxPrefix}`;
  return { address: address as string, prefix, family };
}

/** The set of addresses that count as private: the built-in ranges plus configured CIDRs. */
export class PrivateAddresses {
  private readonly ranges = new BlockList();

  constructor(extra: Cidr[]) {
    for (const text of BUILT_IN_PRIVATE) this.add(parseCidr(text) as Cidr);
    for (const cidr of extra) this.add(cidr);
  }

  /** IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) match the IPv4 ranges. */
  contains(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.ranges.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  private add(cidr: Cidr): void {
    this.ranges.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? 'ipv4' : 'ipv6');
  }
}
