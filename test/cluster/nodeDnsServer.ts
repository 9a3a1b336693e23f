import { createInterface } from 'node:readline';
import { type DnsServerMode, TestDnsServer } from '../support/dnsServer.js';

/**
 * The real node's resolver: the tests' DNS server on 127.0.0.1:53 of the node's network
 * namespace (the kubelet's resolv.conf names it, so the agent's generic check asks it and no
 * real resolver). Run inside the node (RealNode.startDnsServer); each line on stdin switches its
 * mode (answer, servfail, timeout, ...) and is acknowledged with `mode <name>` on stdout.
 */
const server = await TestDnsServer.start({ port: 53, records: { NS: ['ns.nodepulse.test'], A: ['198.18.0.53'] } });
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  server.setMode(line.trim() as DnsServerMode);
  process.stdout.write(`mode ${line.trim()}\n`);
});
lines.on('close', () => process.exit(0));
