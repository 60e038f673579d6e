/**
 * The embedded DNS forwarding what is not ours to upstreams (fake ones on
 * loopback), and its TCP side: pipelining, framing, idle clients.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { ipToReverseName } from './names.js';
import { EmbeddedDns } from './resolver.js';
import { HOST, RA, TC, rcodeOf, dataOf, TableLookup, web, db, api, deadPort, blackhole, forwarded, u16, query, edns, udpRaw, udpQuery, tcpQueries, servers, startDns, upstream, closeServers } from '../../test/helpers/dns.js';

afterEach(closeServers);

describe('EmbeddedDns: forwarding', () => {
  it('forwards a client\'s queries to its own upstreams when the lookup names some (a container\'s --dns)', async () => {
    const shared = await upstream();
    const own = await upstream((q) => ({ flags: RA | (q.flags ?? 0), answers: [{ type: 'A', name: q.questions?.[0]?.name ?? '', ttl: 30, data: '198.51.100.9' }] }));
    const lookup = new TableLookup([]);
    const perClient = Object.assign(lookup, { upstreams: (client: string) => (client === '127.0.0.2' ? [own.spec] : null) });
    const { dns } = await startDns({ upstreams: [shared.spec], lookup: perClient });
    expect((await udpQuery(dns, query('example.net'), { from: '127.0.0.2' })).answers).toMatchObject([{ data: '198.51.100.9' }]);
    expect((await udpQuery(dns, query('example.net'), { from: '127.0.0.3' })).answers).toMatchObject([{ data: '192.0.2.7' }]);
    expect([own.seen.length, shared.seen.length]).toEqual([1, 1]);
  });

  it('forwards names not ours, keeping the client ID and question', async () => {
    const up = await upstream();
    const { dns } = await startDns({ upstreams: [up.spec] });
    const q = query('Example.COM', 'A', edns(1232));
    const r = await udpQuery(dns, q);
    expect(r.id).toBe(q.id);
    expect(r.questions).toEqual([{ name: 'Example.COM', type: 'A', class: 'IN' }]);
    expect(r.flag_ra).toBe(true);
    expect(r.flag_aa).toBe(false);
    expect(r.answers).toMatchObject([{ data: '192.0.2.7', ttl: 30 }]);
    // The upstream got the raw query (EDNS included) under an ID of ours.
    expect(up.seen).toEqual([{ transport: 'udp', id: expect.any(Number), name: 'Example.COM', type: 'A' }]);
    // Partial reverse zones and reverse names outside our ranges are not ours either.
    await udpQuery(dns, query('18.172.in-addr.arpa', 'SOA'));
    await udpQuery(dns, query(ipToReverseName('192.0.2.7'), 'PTR'));
    expect(up.seen.map((s) => s.name)).toEqual(['Example.COM', '18.172.in-addr.arpa', '7.2.0.192.in-addr.arpa']);
  });

  it('fails over to the next upstream when the first is dead or silent', async () => {
    const up = await upstream();
    const hole = await blackhole();
    servers.push(hole);
    const { dns, log } = await startDns({ upstreams: [await deadPort(), hole.spec, up.spec] });
    const started = Date.now();
    const r = await udpQuery(dns, query('example.org'));
    expect(rcodeOf(r)).toBe(0);
    expect(r.answers).toMatchObject([{ data: '192.0.2.7' }]);
    expect(log.messages()).toEqual(['upstream did not answer: trying the next', 'upstream did not answer: trying the next']);
    // The silent one cost one timeout (300 ms); the dead one failed fast or timed out too.
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('moves on after an upstream SERVFAIL or REFUSED, relaying it only if nothing better comes', async () => {
    const refusing = await upstream(() => ({ flags: RA | 5 }));
    const failing = await upstream(() => ({ flags: RA | 2 }));
    const good = await upstream();
    const { dns } = await startDns({ upstreams: [refusing.spec, failing.spec, good.spec] });
    expect((await udpQuery(dns, query('example.net'))).answers).toMatchObject([{ data: '192.0.2.7' }]);

    const { dns: bad } = await startDns({ upstreams: [failing.spec, refusing.spec] });
    expect(rcodeOf(await udpQuery(bad, query('example.net')))).toBe(5);
  });

  it('answers SERVFAIL when every upstream is dead, and when there are none', async () => {
    const hole = await blackhole();
    servers.push(hole);
    const { dns } = await startDns({ upstreams: [await deadPort(), hole.spec] });
    const q = query('example.com');
    const r = await udpQuery(dns, q);
    expect(r.id).toBe(q.id);
    expect(rcodeOf(r)).toBe(2);
    expect(r.flag_ra).toBe(true);
    expect(r.questions).toEqual(q.questions);

    const { dns: none } = await startDns({ upstreams: [] });
    expect(rcodeOf(await udpQuery(none, query('example.com')))).toBe(2);
  });

  it('retries over TCP when the UDP reply is truncated', async () => {
    const big = Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, name: 'big.example', ttl: 30, data: `192.0.2.${i}` }));
    const up = await upstream((q, t) => (t === 'udp' ? { flags: RA | TC, answers: big.slice(0, 5) } : { flags: RA, answers: big }));
    const { dns } = await startDns({ upstreams: [up.spec] });

    // The full reply fits what the client accepts: it gets it over UDP.
    const r = await udpQuery(dns, query('big.example', 'A', edns(4096)));
    expect(r.flag_tc).toBe(false);
    expect(r.answers).toHaveLength(60);
    expect(up.seen.map((s) => s.transport)).toEqual(['udp', 'tcp']);

    // It does not (no EDNS, 512 bytes): the truncated reply, and the client comes back over TCP.
    const small = await udpQuery(dns, query('big.example'));
    expect(small.flag_tc).toBe(true);
    expect(small.size).toBeLessThanOrEqual(512);
    const q = query('big.example');
    const viaTcp = (await tcpQueries(dns, [q])).get(q.id as number);
    expect(viaTcp?.answers).toHaveLength(60);
    // A TCP client is forwarded over TCP straight away.
    expect(up.seen.map((s) => s.transport)).toEqual(['udp', 'tcp', 'udp', 'tcp', 'tcp']);
  });

  it('does not let a slow upstream answer hold up other queries', async () => {
    const up = await upstream((q) => {
      const p = forwarded(q);
      return q.questions?.[0]?.name === 'slow.example' ? { delayMs: 250, packet: p } : p;
    });
    const { dns } = await startDns({ upstreams: [up.spec], upstreamTimeoutMs: 2000 });
    const order: string[] = [];
    await Promise.all([
      udpQuery(dns, query('slow.example')).then(() => order.push('slow')),
      new Promise((r) => setTimeout(r, 20)).then(() => udpQuery(dns, query('fast.example')).then(() => order.push('fast'))),
      new Promise((r) => setTimeout(r, 20)).then(() => udpQuery(dns, query('web.mynet')).then(() => order.push('ours'))),
    ]);
    expect(order.indexOf('slow')).toBe(2);
  });

  it('answers a burst of concurrent queries, ours and forwarded', async () => {
    const up = await upstream((q) => ({ delayMs: 20, packet: forwarded(q) }));
    const { dns } = await startDns({ upstreams: [up.spec] });
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => udpQuery(dns, query(i % 2 ? `host${i}.example` : 'web.mynet'))),
    );
    expect(replies.map((r, i) => dataOf(r)[0] === (i % 2 ? '192.0.2.7' : '172.18.0.2')).every(Boolean)).toBe(true);
    expect(up.seen).toHaveLength(100);
  });

  it('answers SERVFAIL beyond the bound of forwarded queries in flight', async () => {
    const hole = await blackhole();
    servers.push(hole);
    const { dns } = await startDns({ upstreams: [hole.spec], upstreamTimeoutMs: 1000, maxInFlight: 2 });
    const waiting = [udpQuery(dns, query('a.example')), udpQuery(dns, query('b.example'))];
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const over = await udpQuery(dns, query('c.example'));
    expect(rcodeOf(over)).toBe(2);
    expect(Date.now() - started).toBeLessThan(500);
    // Our own names are not forwarded and not limited.
    expect(rcodeOf(await udpQuery(dns, query('web.mynet')))).toBe(0);
    expect((await Promise.all(waiting)).map(rcodeOf)).toEqual([2, 2]);
  });

  it('ignores stray datagrams to its upstream socket and takes the real reply', async () => {
    // An upstream that first sends a reply with the wrong ID, then the right one.
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, HOST, r));
    servers.push({ close: () => new Promise<void>((r) => udp.close(() => r())) });
    udp.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const reply = (id: number, data: string) =>
        dnsPacket.encode({ type: 'response', id, flags: RA, questions: q.questions, answers: [{ type: 'A', name: 'x.example', data }] });
      udp.send(reply(((q.id ?? 0) + 1) & 0xffff, '192.0.2.66'), rinfo.port, rinfo.address);
      udp.send(reply(q.id ?? 0, '192.0.2.1'), rinfo.port, rinfo.address);
    });
    const { dns } = await startDns({ upstreams: [`${HOST}:${udp.address().port}`] });
    expect(dataOf(await udpQuery(dns, query('x.example')))).toEqual(['192.0.2.1']);
  });

  it('closes promptly with forwarded queries still waiting', async () => {
    const hole = await blackhole();
    servers.push(hole);
    const lookup = new TableLookup([]);
    const dns = await EmbeddedDns.start({ bind: HOST, port: 0, lookup, upstreams: [hole.spec], upstreamTimeoutMs: 10_000 });
    void udpRaw(dns, dnsPacket.encode(query('pending.example')), { timeoutMs: 200 });
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await dns.close();
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe('EmbeddedDns: TCP', () => {
  it('answers several queries on one connection, ours and forwarded', async () => {
    const up = await upstream();
    const { dns } = await startDns({ upstreams: [up.spec] });
    const qs = [query('web.mynet'), query('db.mynet', 'AAAA'), query('nobody.mynet'), query('example.com'), query('api', 'A')];
    const replies = await tcpQueries(dns, qs);
    const byId = (q: dnsPacket.Packet) => replies.get(q.id as number) as dnsPacket.DecodedPacket;
    expect(dataOf(byId(qs[0]!))).toEqual(['172.18.0.2']);
    expect(byId(qs[1]!).answers).toEqual([]);
    expect(rcodeOf(byId(qs[2]!))).toBe(3);
    expect(dataOf(byId(qs[3]!))).toEqual(['192.0.2.7']);
    expect(byId(qs[4]!).answers).toHaveLength(5);
    expect(up.seen).toMatchObject([{ transport: 'tcp', name: 'example.com' }]);
  });

  it('still replies to a client that half-closes after its query', async () => {
    const up = await upstream((q) => ({ delayMs: 100, packet: forwarded(q) }));
    const { dns } = await startDns({ upstreams: [up.spec] });
    const { address, port } = dns.address();
    const sock = net.connect({ host: address, port });
    servers.push({ close: async () => void sock.destroy() });
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.end(Buffer.concat([dnsPacket.streamEncode(query('example.com')), dnsPacket.streamEncode(query('web.mynet'))]));
    await closed;
    const all = Buffer.concat(chunks);
    const first = dnsPacket.decode(all.subarray(2, 2 + all.readUInt16BE(0)));
    const rest = all.subarray(2 + all.readUInt16BE(0));
    const second = dnsPacket.decode(rest.subarray(2));
    // Ours is answered at once, the forwarded one when the upstream answers.
    expect([dataOf(first), dataOf(second)]).toEqual([['172.18.0.2'], ['192.0.2.7']]);
  });

  it('reassembles queries split across segments', async () => {
    const { dns } = await startDns();
    const { address, port } = dns.address();
    const sock = net.connect({ host: address, port });
    servers.push({ close: async () => void sock.destroy() });
    const q = dnsPacket.streamEncode(query('web.mynet'));
    const reply = new Promise<Buffer>((resolve) => sock.once('data', resolve));
    await new Promise<void>((r) => sock.once('connect', r));
    sock.write(q.subarray(0, 1));
    await new Promise((r) => setTimeout(r, 30));
    sock.write(q.subarray(1, 9));
    await new Promise((r) => setTimeout(r, 30));
    sock.write(q.subarray(9));
    const p = dnsPacket.decode((await reply).subarray(2));
    expect(dataOf(p)).toEqual(['172.18.0.2']);
  });

  it('closes an idle connection', async () => {
    const { dns } = await startDns({ tcpIdleTimeoutMs: 150 });
    const { address, port } = dns.address();
    const sock = net.connect({ host: address, port });
    servers.push({ close: async () => void sock.destroy() });
    const started = Date.now();
    await new Promise<void>((r) => sock.on('close', () => r()).resume());
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  it('closes a connection that sends garbage, and keeps serving others', async () => {
    const { dns } = await startDns();
    const { address, port } = dns.address();
    const sock = net.connect({ host: address, port });
    servers.push({ close: async () => void sock.destroy() });
    const closed = new Promise<void>((r) => sock.on('close', () => r()).resume());
    sock.write(Buffer.concat([u16(5), Buffer.from('junk!')]));
    await closed;
    const q = query('web.mynet');
    expect((await tcpQueries(dns, [q])).get(q.id as number)?.answers).toHaveLength(1);
  });
});
