/**
 * The embedded DNS serves only the clients its lookup admits (a network's own
 * sandboxes), and forwards at most a token bucket's worth of queries per
 * client: the rest is REFUSED, never sent upstream, and counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TableLookup, blackhole, closeServers, query, rcodeOf, startDns, tcpQueries, udpQuery, upstream } from '../../test/helpers/dns.js';

afterEach(closeServers);

const only = (allowed: string) => Object.assign(new TableLookup([]), { admits: (client: string) => client === allowed });

describe('EmbeddedDns: who may ask', () => {
  it('a client the lookup admits is answered and forwarded; any other gets no reply and nothing goes upstream', async () => {
    const up = await upstream();
    const { dns } = await startDns({ upstreams: [up.spec], lookup: only('127.0.0.2') });
    // control: the admitted client is forwarded
    expect((await udpQuery(dns, query('example.com'), { from: '127.0.0.2' })).answers).toMatchObject([{ data: '192.0.2.7' }]);
    expect(up.seen.length).toBe(1);
    await expect(udpQuery(dns, query('example.com'), { from: '127.0.0.3', timeoutMs: 400 })).rejects.toThrow();
    await expect(tcpQueries(dns, [query('example.com')], { from: '127.0.0.3' })).rejects.toThrow();
    expect(up.seen.length).toBe(1);
    expect(dns.stats()).toEqual({ notAdmitted: 2, rateLimited: 0, forwarded: 1, unanswered: 0 });
  });

  it('a lookup whose admits() throws drops the query (fails closed)', async () => {
    const up = await upstream();
    const lookup = Object.assign(new TableLookup([]), { admits: () => { throw new Error('controller bug'); } });
    const { dns } = await startDns({ upstreams: [up.spec], lookup });
    await expect(udpQuery(dns, query('example.com'), { timeoutMs: 400 })).rejects.toThrow();
    expect(up.seen.length).toBe(0);
  });
});

describe('EmbeddedDns: forwarding rate per client', () => {
  it('forwards a burst, then answers REFUSED without asking upstream; another client has its own bucket', async () => {
    const up = await upstream();
    // A refill of one query in about three hours: the bucket does not refill during the test.
    const { dns } = await startDns({ upstreams: [up.spec], forwardRate: { perSecond: 0.0001, burst: 3 } });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push(rcodeOf(await udpQuery(dns, query(`n${i}.example.com`), { from: '127.0.0.2' })));
    expect(codes).toEqual([0, 0, 0, 5, 5]);
    expect(up.seen.map((s) => s.name)).toEqual(['n0.example.com', 'n1.example.com', 'n2.example.com']);
    expect(rcodeOf(await udpQuery(dns, query('other.example.com'), { from: '127.0.0.3' }))).toBe(0);
    expect(up.seen.length).toBe(4);
    expect(dns.stats()).toEqual({ notAdmitted: 0, rateLimited: 2, forwarded: 4, unanswered: 0 });
  });

  it('names of ours are answered past the limit (only forwarding costs tokens)', async () => {
    const up = await upstream();
    const { dns } = await startDns({ upstreams: [up.spec], forwardRate: { perSecond: 0.0001, burst: 1 } });
    expect(rcodeOf(await udpQuery(dns, query('example.com')))).toBe(0);
    expect(rcodeOf(await udpQuery(dns, query('example.com')))).toBe(5);
    const r = await udpQuery(dns, query('web.mynet'));
    expect(r.answers?.length).toBeGreaterThan(0);
  });

  it('refuses a bad rate, naming it', async () => {
    await expect(startDns({ forwardRate: { perSecond: 0, burst: 3 } })).rejects.toThrow(/forwardRate.perSecond 0/);
    await expect(startDns({ forwardRate: { perSecond: 1, burst: 1.5 } })).rejects.toThrow(/forwardRate.burst 1.5/);
  });
});

describe('EmbeddedDns: counting what it forwards', () => {
  it('a forwarded query no upstream answers is counted unanswered', async () => {
    const hole = await blackhole();
    try {
      const { dns } = await startDns({ upstreams: [hole.spec], upstreamTimeoutMs: 200 });
      expect(rcodeOf(await udpQuery(dns, query('lost.example.com')))).toBe(2);
      expect(dns.stats()).toEqual({ notAdmitted: 0, rateLimited: 0, forwarded: 1, unanswered: 1 });
    } finally {
      await hole.close();
    }
  });
});
