import { createSocket } from 'node:dgram';
import { encode } from 'dns-packet';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseDnsServer, queryDns, type DnsServerAddress } from '../../agent/probes/dnsClient.js';
import { MAX_RECORDS_PER_SECTION, readReply } from '../../agent/probes/dnsReply.js';
import { TestDnsServer } from '../support/dnsServer.js';

const question = { name: 'api.example.test', type: 'A' as const };
let server: TestDnsServer;
let target: DnsServerAddress;

beforeAll(async () => {
  server = await TestDnsServer.start();
  target = parseDnsServer(server.address);
});
afterAll(() => server.stop());
beforeEach(() => {
  server.setMode('answer');
  server.setRecords({ A: ['10.1.2.3', '10.1.2.4'], AAAA: ['fd00::5'] });
  server.setTcpChunkBytes(0);
  server.queries.length = 0;
});

const ask = (timeoutMs = 1000) => queryDns(target, question, { timeoutMs });

describe('DNS server address', () => {
  it('accepts host, host:port, [v6]:port and a bare IPv6 address, with port 53 by default', () => {
    expect(parseDnsServer('10.0.0.10')).toEqual({ host: '10.0.0.10', port: 53, family: 4 });
    expect(parseDnsServer('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353, family: 4 });
    expect(parseDnsServer('[fd00::10]:5353')).toEqual({ host: 'fd00::10', port: 5353, family: 6 });
    expect(parseDnsServer('[fd00::10]')).toEqual({ host: 'fd00::10', port: 53, family: 6 });
    expect(parseDnsServer('fd00::10')).toEqual({ host: 'fd00::10', port: 53, family: 6 });
  });

  it('rejects a resolver given by name or with a bad port, saying how to write it', () => {
    expect(() => parseDnsServer('dns.example.test')).toThrow(/not an IP address; write host, host:port or \[v6\]:port/);
    expect(() => parseDnsServer('10.0.0.10:0')).toThrow(/port "0"; use a port from 1 to 65535/);
    expect(() => parseDnsServer('10.0.0.10:70000')).toThrow(/port "70000"/);
    expect(() => parseDnsServer('10.0.0.10:dns')).toThrow(/port "dns"/);
  });
});

describe('DNS query outcomes', () => {
  it('returns the answered addresses and latency of a good reply over one UDP datagram', async () => {
    const reply = await ask();
    expect(reply).toMatchObject({ outcome: 'ok', rcode: 'NOERROR', answers: ['10.1.2.3', '10.1.2.4'], transport: 'udp', detail: '' });
    expect(reply.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.queries).toEqual([expect.objectContaining({ transport: 'udp', name: question.name, type: 'A' })]);
  });

  it('returns only records of the asked type (AAAA)', async () => {
    const reply = await queryDns(target, { name: question.name, type: 'AAAA' }, { timeoutMs: 1000 });
    expect(reply).toMatchObject({ outcome: 'ok', answers: ['fd00::5'] });
  });

  it.each([
    ['nxdomain', 'nxdomain', 'NXDOMAIN'],
    ['servfail', 'servfail', 'SERVFAIL'],
    ['refused', 'refused', 'REFUSED'],
    ['formerr', 'otherRcode', 'FORMERR'],
  ] as const)('tells a %s reply apart (outcome %s, rcode %s)', async (mode, outcome, rcode) => {
    server.setMode(mode);
    const reply = await ask();
    expect(reply).toMatchObject({ outcome, rcode, answers: [], detail: `server answered ${rcode}` });
  });

  it('gives up after timeoutMs with one datagram sent and no retry', async () => {
    server.setMode('timeout');
    const started = performance.now();
    const reply = await ask(300);
    const elapsed = performance.now() - started;
    expect(reply).toMatchObject({ outcome: 'timeout', rcode: null, detail: 'no reply within 300 ms over UDP' });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(800);
    expect(server.queries).toHaveLength(1);
  });

  it('retries a truncated UDP reply once over TCP and returns the full answer', async () => {
    server.setMode('truncate');
    const reply = await ask();
    expect(reply).toMatchObject({ outcome: 'ok', transport: 'tcp', answers: ['10.1.2.3', '10.1.2.4'] });
    expect(server.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  it('reassembles a TCP reply that arrives a few bytes at a time', async () => {
    server.setMode('truncate');
    server.setTcpChunkBytes(1);
    const reply = await ask();
    expect(reply).toMatchObject({ outcome: 'ok', transport: 'tcp', answers: ['10.1.2.3', '10.1.2.4'] });
  });

  it('reports a TCP reply cut off mid-frame as malformed', async () => {
    server.setMode('truncateThenCut');
    const reply = await ask();
    expect(reply).toMatchObject({ outcome: 'malformed', transport: 'tcp' });
    expect(reply.detail).toMatch(/^TCP reply cut short: connection closed after \d+ of \d+ bytes$/);
  });

  it('ignores a datagram of random bytes (not a reply to this query) and waits until the timeout', async () => {
    server.setMode('garbage');
    const reply = await ask(300);
    expect(reply).toMatchObject({ outcome: 'timeout', rcode: null, answers: [], discarded: 1 });
    expect(reply.detail).toMatch(/^no reply within 300 ms over UDP \(1 reply\(ies\) to another query ignored, the last: reply id \d+ does not match query id \d+\)$/);
  });

  it('reports a reply whose records are random bytes as malformed, without throwing', async () => {
    server.setMode('corruptRecords');
    for (let i = 0; i < 5; i++) expect((await ask()).outcome).toBe('malformed');
  });

  it('ignores a reply with another id and waits on: it is a timeout, not a broken server', async () => {
    server.setMode('wrongId');
    const reply = await ask(300);
    expect(reply).toMatchObject({ outcome: 'timeout', discarded: 1 });
    expect(reply.detail).toMatch(/the last: reply id \d+ does not match query id \d+\)$/);
  });

  it('ignores a reply that answers another question and waits on', async () => {
    server.setMode('wrongQuestion');
    const reply = await ask(300);
    expect(reply).toMatchObject({ outcome: 'timeout', discarded: 1 });
    expect(reply.detail).toContain('the last: reply answers not-api.example.test A IN, not the question api.example.test A IN');
  });

  it('reads a late answer to the previous query as what it is: ignored, and this query timed out', async () => {
    server.setMode('late');
    expect(await ask(300)).toMatchObject({ outcome: 'timeout', discarded: 0 });
    const reply = await ask(300);
    const [first, second] = server.queries;
    expect(reply).toMatchObject({ outcome: 'timeout', discarded: 1 });
    expect(reply.detail).toContain(`the last: reply id ${first?.id} does not match query id ${second?.id})`);
  });

  it('keeps waiting past a late answer to the previous query and takes the right one', async () => {
    server.setMode('lateThenAnswer');
    expect(await ask()).toMatchObject({ outcome: 'ok', discarded: 0 });
    expect(await ask()).toMatchObject({ outcome: 'ok', answers: ['10.1.2.3', '10.1.2.4'], discarded: 1 });
  });

  it('never sees a reply from another port than the server\'s (the socket is connected)', async () => {
    server.setMode('fromOtherPort');
    expect(await ask(300)).toMatchObject({ outcome: 'timeout', discarded: 0 });
  });

  it('rejects a reply whose header claims 65535 records before decoding it', async () => {
    server.setMode('inflatedCounts');
    const reply = await ask();
    expect(reply.outcome).toBe('malformed');
    expect(reply.detail).toBe(`reply claims 65535 answer records (limit ${MAX_RECORDS_PER_SECTION})`);
  });

  it('reports nothing listening on the port as a network error', async () => {
    const probe = createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const reply = await queryDns({ host: '127.0.0.1', port, family: 4 }, question, { timeoutMs: 1000 });
    expect(reply).toMatchObject({ outcome: 'networkError', detail: 'connection refused over UDP (nothing listening)' });
  });

  it('rejects with the reason when the caller aborts, rather than reporting a DNS failure', async () => {
    server.setMode('timeout');
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('sample cancelled')), 50);
    await expect(queryDns(target, question, { timeoutMs: 5000, signal: controller.signal })).rejects.toThrow('sample cancelled');
  });
});

describe('DNS reply checks', () => {
  const id = 0x1234;
  const reply = (fields: Parameters<typeof encode>[0]) =>
    encode({ type: 'response', id, questions: [{ name: question.name, type: 'A' }], ...fields });

  it('turns away inflated counts in bounded time, without handing them to the decoder', () => {
    const inflated = reply({ answers: [{ type: 'A', name: question.name, ttl: 1, data: '10.0.0.1' }] });
    inflated.writeUInt16BE(0xffff, 6);
    inflated.writeUInt16BE(0xffff, 8);
    inflated.writeUInt16BE(0xffff, 10);
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) {
      expect(readReply(inflated, id, question, 'udp')).toEqual({
        kind: 'malformed',
        detail: 'reply claims 65535 answer records (limit 64)',
      });
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('turns away counts that cannot fit in the bytes received', () => {
    const short = reply({});
    short.writeUInt16BE(20, 6);
    expect(readReply(short, id, question, 'udp')).toEqual({
      kind: 'malformed',
      detail: `reply claims 1 question(s) and 20 records, which need at least 237 bytes, but it has ${short.length}`,
    });
  });

  it('matches the echoed name without regard to case or the trailing dot', () => {
    const upper = encode({
      type: 'response',
      id,
      questions: [{ name: 'API.Example.TEST.', type: 'A' }],
      answers: [{ type: 'A', name: 'API.Example.TEST', ttl: 1, data: '10.0.0.1' }],
    });
    expect(readReply(upper, id, question, 'udp')).toEqual({ kind: 'answered', rcode: 'NOERROR', answers: ['10.0.0.1'] });
  });

  it('accepts an error reply without a question but not an answer without one', () => {
    const servfail = encode({ type: 'response', id, flags: 2 });
    expect(readReply(servfail, id, question, 'udp')).toEqual({ kind: 'answered', rcode: 'SERVFAIL', answers: [] });
    const noerror = encode({ type: 'response', id });
    expect(readReply(noerror, id, question, 'udp')).toEqual({ kind: 'malformed', detail: 'NOERROR reply does not echo the question' });
  });

  it('turns away a query, a short header, and TC over TCP', () => {
    expect(readReply(Buffer.alloc(5), id, question, 'udp')).toMatchObject({ kind: 'malformed', detail: expect.stringMatching(/shorter than/) });
    const query = encode({ type: 'query', id, questions: [{ name: question.name, type: 'A' }] });
    expect(readReply(query, id, question, 'udp')).toMatchObject({ kind: 'malformed', detail: expect.stringMatching(/QR bit clear/) });
    const truncated = reply({ flags: 0x0200 });
    expect(readReply(truncated, id, question, 'udp')).toEqual({ kind: 'truncated' });
    expect(readReply(truncated, id, question, 'tcp')).toMatchObject({ kind: 'malformed', detail: expect.stringMatching(/TC/) });
  });
});
