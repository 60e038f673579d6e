/**
 * The embedded DNS over real sockets, loopback only: names of ours (local
 * answers, visibility, sizes), bad input, and dig when it is installed.
 * Forwarding and TCP are in forwarding.test.ts; the shared fakes in
 * test/helpers/dns.ts.
 */
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../exec.js';
import { ipToReverseName } from './names.js';
import { ANSWER_TTL, EmbeddedDns } from './resolver.js';
import { HOST, AA, RA, TC, rcodeOf, dataOf, TableLookup, web, db, replicas, api, secret, many, deadPort, query, edns, udpRaw, udpQuery, tcpQueries, startDns, upstream, closeServers } from '../../test/helpers/dns.js';

afterEach(closeServers);

describe('EmbeddedDns: names of ours', () => {
  it('answers A authoritatively with TTL 600, echoing ID and question as asked', async () => {
    const { dns, lookup } = await startDns();
    const q = query('Web.MyNet');
    const r = await udpQuery(dns, q);
    expect(r.id).toBe(q.id);
    expect(r.type).toBe('response');
    expect(r.questions).toEqual([{ name: 'Web.MyNet', type: 'A', class: 'IN' }]);
    expect(rcodeOf(r)).toBe(0);
    expect((r.flags ?? 0) & (AA | RA)).toBe(AA | RA);
    expect(r.flag_rd).toBe(true);
    expect(r.answers).toMatchObject([{ name: 'Web.MyNet', type: 'A', class: 'IN', ttl: ANSWER_TTL, data: '172.18.0.2' }]);
    // The controller gets the normalized name.
    expect(lookup.calls.at(-1)).toEqual({ client: HOST, name: 'web.mynet', type: 'A' });
  });

  it('answers AAAA', async () => {
    const { dns } = await startDns();
    const r = await udpQuery(dns, query('web', 'AAAA'));
    expect(rcodeOf(r)).toBe(0);
    expect(r.answers).toMatchObject([{ type: 'AAAA', ttl: ANSWER_TTL, data: 'fd00:18::2' }]);
  });

  it('answers NODATA (NOERROR, no records) for AAAA of an IPv4-only container', async () => {
    const { dns } = await startDns();
    const r = await udpQuery(dns, query('db.mynet', 'AAAA'));
    expect(rcodeOf(r)).toBe(0);
    expect(r.flag_aa).toBe(true);
    expect(r.answers).toEqual([]);
  });

  it('answers NXDOMAIN for a name the lookup says is not found', async () => {
    const { dns } = await startDns();
    const r = await udpQuery(dns, query('nobody.mynet'));
    expect(rcodeOf(r)).toBe(3);
    expect(r.flag_aa).toBe(true);
    expect(r.answers).toEqual([]);
  });

  it('answers other types for names of ours NOERROR without records', async () => {
    const { dns } = await startDns();
    for (const type of ['MX', 'TXT', 'SRV', 'CNAME'] as const) {
      const r = await udpQuery(dns, query('web.mynet', type));
      expect(rcodeOf(r), type).toBe(0);
      expect(r.answers, type).toEqual([]);
    }
    expect(rcodeOf(await udpQuery(dns, query('nobody.mynet', 'MX')))).toBe(3);
  });

  it('returns every address of an alias, in shuffled order', async () => {
    const { dns } = await startDns();
    const orders = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await udpQuery(dns, query('api.mynet'));
      const ips = dataOf(r) as string[];
      expect([...ips].sort()).toEqual(replicas);
      orders.add(ips.join(','));
    }
    // 5! orders: 30 draws all alike has probability 120^-29.
    expect(orders.size).toBeGreaterThan(1);
  });

  it('answers PTR for container addresses, IPv4 and IPv6', async () => {
    const { dns, lookup } = await startDns();
    const r4 = await udpQuery(dns, query(ipToReverseName('172.18.0.3'), 'PTR'));
    expect(rcodeOf(r4)).toBe(0);
    expect(r4.flag_aa).toBe(true);
    expect(r4.answers).toMatchObject([{ type: 'PTR', name: '3.0.18.172.in-addr.arpa', ttl: ANSWER_TTL, data: 'db.mynet' }]);
    expect(lookup.calls.at(-1)).toEqual({ client: HOST, name: '', ip: '172.18.0.3' });

    const r6 = await udpQuery(dns, query(ipToReverseName('fd00:18::2').toUpperCase(), 'PTR'));
    expect(r6.answers).toMatchObject([{ type: 'PTR', data: 'web.mynet' }]);
    expect(lookup.calls.at(-1)).toEqual({ client: HOST, name: '', ip: 'fd00:18::2' });

    // An address in our range without a container.
    expect(rcodeOf(await udpQuery(dns, query(ipToReverseName('172.18.0.99'), 'PTR')))).toBe(3);
  });

  it('lets the lookup decide by client: two clients, two answers', async () => {
    const { dns, lookup } = await startDns();
    const a = await udpQuery(dns, query('secret.mynet'), { from: '127.0.0.2' });
    const b = await udpQuery(dns, query('secret.mynet'), { from: '127.0.0.3' });
    const c = await udpQuery(dns, query('secret.mynet'), { from: '127.0.0.4' });
    expect(dataOf(a)).toEqual(['172.18.0.20']);
    expect(dataOf(b)).toEqual(['172.18.0.21']);
    expect(rcodeOf(c)).toBe(3);
    expect(lookup.calls.slice(-3).map((x) => x.client)).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('cuts our answers to 512 bytes without EDNS, with TC; TCP and EDNS get them all', async () => {
    const { dns } = await startDns();
    const small = await udpQuery(dns, query('many.mynet'));
    expect(small.size).toBeLessThanOrEqual(512);
    expect(small.flag_tc).toBe(true);
    expect(small.answers?.length).toBeGreaterThan(10);
    expect(small.answers?.length).toBeLessThan(100);

    const big = await udpQuery(dns, query('many.mynet', 'A', edns(4096)));
    expect(big.flag_tc).toBe(false);
    expect(big.answers).toHaveLength(100);
    // A query with OPT gets OPT back (RFC 6891).
    expect(big.additionals).toMatchObject([{ type: 'OPT', udpPayloadSize: 1232 }]);

    const q = query('many.mynet');
    const viaTcp = (await tcpQueries(dns, [q])).get(q.id as number);
    expect(viaTcp?.flag_tc).toBe(false);
    expect(viaTcp?.answers).toHaveLength(100);
  });

  it('answers SERVFAIL when the lookup throws, and keeps serving', async () => {
    const { dns, log } = await startDns();
    const r = await udpQuery(dns, query('boom.mynet'));
    expect(rcodeOf(r)).toBe(2);
    expect(r.flag_aa).toBe(false);
    expect(log.logs).toContainEqual(expect.objectContaining({ level: 50, msg: 'lookup failed: SERVFAIL', name: 'boom.mynet' }));
    expect(rcodeOf(await udpQuery(dns, query('web.mynet')))).toBe(0);
  });

  it('listens on IPv6 loopback too', async () => {
    const { dns, lookup } = await startDns({ bind: '::1' });
    expect(dns.address()).toMatchObject({ address: '::1', family: 'IPv6' });
    const r = await udpQuery(dns, query('web.mynet', 'AAAA'));
    expect(dataOf(r)).toEqual(['fd00:18::2']);
    expect(lookup.calls.at(-1)?.client).toBe('::1');
    const q = query('db.mynet');
    expect(dataOf((await tcpQueries(dns, [q])).get(q.id as number))).toEqual(['172.18.0.3']);
  });
});

describe('EmbeddedDns: bad input', () => {
  it('ignores malformed datagrams and responses, and keeps answering', async () => {
    const { dns, log } = await startDns();
    const junk = [
      Buffer.alloc(0),
      Buffer.from('hello'),
      Buffer.alloc(12, 0xff),
      // Header claims a question that is not there.
      dnsPacket.encode(query('web.mynet')).subarray(0, 14),
      // A response: answering it could start a loop between resolvers.
      dnsPacket.encode({ ...query('web.mynet'), type: 'response' }),
    ];
    for (const msg of junk) expect(await udpRaw(dns, msg, { timeoutMs: 150 })).toBeNull();
    expect(rcodeOf(await udpQuery(dns, query('web.mynet')))).toBe(0);
    expect(log.messages()).toEqual([...Array<string>(4).fill('malformed DNS message ignored'), 'DNS response ignored: not a query']);
  });

  it('answers FORMERR for several questions and NOTIMP for other opcodes', async () => {
    const { dns } = await startDns();
    const two = await udpQuery(dns, {
      ...query('web.mynet'),
      questions: [
        { type: 'A', name: 'web.mynet' },
        { type: 'A', name: 'db.mynet' },
      ],
    });
    expect(rcodeOf(two)).toBe(1);
    const update = await udpQuery(dns, { ...query('mynet', 'SOA'), flags: 5 << 11 });
    expect(rcodeOf(update)).toBe(4);
    expect(((update.flags ?? 0) >> 11) & 0xf).toBe(5);
  });

  it('answers BADVERS to an EDNS version it does not speak', async () => {
    const { dns } = await startDns();
    const r = await udpQuery(dns, query('web.mynet', 'A', edns(1232, 1)));
    expect(r.additionals).toMatchObject([{ type: 'OPT', extendedRcode: 1 }]);
    expect(r.answers).toEqual([]);
  });

  it('leaves out addresses the lookup gets wrong', async () => {
    const { dns } = await startDns({}, [{ names: ['odd.mynet'], v4: ['172.18.0.5', 'fd00::5', 'nonsense'] }]);
    expect(dataOf(await udpQuery(dns, query('odd.mynet')))).toEqual(['172.18.0.5']);
  });

  it('refuses bad options, naming the value', async () => {
    const lookup = new TableLookup([]);
    const base = { port: 0, lookup, upstreams: [] };
    await expect(EmbeddedDns.start({ ...base, bind: 'gateway' })).rejects.toThrow(/bind address 'gateway' is not an IPv4 or IPv6 address/);
    await expect(EmbeddedDns.start({ ...base, bind: HOST, port: 70000 })).rejects.toThrow(/port 70000 is not an integer in 0\.\.65535/);
    await expect(EmbeddedDns.start({ ...base, bind: HOST, upstreams: ['dns.example'] })).rejects.toThrow(TypeError);
    await expect(EmbeddedDns.start({ ...base, bind: HOST, upstreamTimeoutMs: 0 })).rejects.toThrow(/upstreamTimeoutMs 0/);
    await expect(EmbeddedDns.start({ ...base, bind: HOST, lookup: {} as Lookup })).rejects.toThrow(/lookup must implement/);
  });

  it('refuses itself as upstream, and a port already taken', async () => {
    const { dns } = await startDns();
    const { port } = dns.address();
    const lookup = new TableLookup([]);
    await expect(EmbeddedDns.start({ bind: HOST, port, lookup, upstreams: [] })).rejects.toThrow(
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}/udp`),
    );
    const free = Number((await deadPort()).split(':')[1]);
    await expect(EmbeddedDns.start({ bind: HOST, port: free, lookup, upstreams: [`${HOST}:${free}`] })).rejects.toThrow(
      /is this resolver's own address/,
    );
    // The refused one let go of its port.
    const again = await EmbeddedDns.start({ bind: HOST, port: free, lookup, upstreams: [] });
    await again.close();
  });
});

// dig is the resolver tool a person would use; bind9-dnsutils provides it.
// dig comes from bind9-dnsutils, which scripts/setup.sh installs: a missing one fails here.
describe('EmbeddedDns with dig', () => {
  const dig = async (dns: EmbeddedDns, ...args: string[]) => {
    const { address, port } = dns.address();
    return (await run('dig', [`@${address}`, '-p', String(port), '+tries=1', '+time=2', ...args])).stdout;
  };

  it('answers dig over UDP and TCP, forward and reverse, and forwards the rest', async () => {
    const up = await upstream();
    const { dns } = await startDns({ upstreams: [up.spec] });
    const a = await dig(dns, 'web.mynet', 'A');
    expect(a).toMatch(/status: NOERROR/);
    expect(a).toMatch(/flags: qr aa rd ra;/);
    expect(a).toMatch(/^web\.mynet\.\s+600\s+IN\s+A\s+172\.18\.0\.2$/m);

    expect(await dig(dns, '+short', '+tcp', 'web.mynet', 'AAAA')).toBe('fd00:18::2\n');
    expect(await dig(dns, '+short', '-x', '172.18.0.3')).toBe('db.mynet.\n');
    expect(await dig(dns, '+short', '-x', 'fd00:18::2')).toBe('web.mynet.\n');
    expect(await dig(dns, 'nobody.mynet')).toMatch(/status: NXDOMAIN/);
    expect((await dig(dns, '+short', 'api.mynet')).trim().split('\n').sort()).toEqual(replicas);

    const fwd = await dig(dns, 'example.com');
    expect(fwd).toMatch(/status: NOERROR/);
    expect(fwd).toMatch(/^example\.com\.\s+30\s+IN\s+A\s+192\.0\.2\.7$/m);
    // dig sends EDNS by default; it gets OPT back from us as from any server.
    expect(a).toMatch(/OPT PSEUDOSECTION/);
  });

  it('gives dig a truncated answer over UDP and the whole one when it retries over TCP', async () => {
    const { dns } = await startDns();
    const out = await dig(dns, '+noedns', '+short', 'many.mynet');
    expect(out.trim().split('\n')).toHaveLength(100);
    const udpOnly = await dig(dns, '+noedns', '+ignore', 'many.mynet');
    expect(udpOnly).toMatch(/flags: qr aa tc rd ra;/);
  });
});
