/**
 * The embedded DNS over real sockets, loopback only: the resolver on
 * 127.0.0.1 or ::1 at a free port, fake upstreams beside it, and clients
 * that are dns-packet over dgram/net, and dig when it is installed.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../exec.js';
import { ipToReverseName } from './names.js';
import { ANSWER_TTL, EmbeddedDns, type AddressType, type EmbeddedDnsOptions, type Lookup, type ResolveResult } from './resolver.js';

const HOST = '127.0.0.1';
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const RA = dnsPacket.RECURSION_AVAILABLE;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const rcodeOf = (p: dnsPacket.Packet) => (p.flags ?? 0) & 0xf;
const dataOf = (p: dnsPacket.Packet | undefined) => (p?.answers ?? []).map((a) => ('data' in a ? a.data : undefined));

// --- the controller's side, faked -------------------------------------------

interface Sandbox {
  names: string[];
  v4?: string[];
  v6?: string[];
  /** Clients (source addresses) that may see it; every client when absent. */
  visibleTo?: string[];
}

/** A lookup over a fixed table; names under '.mynet' it does not know are NXDOMAIN. */
class TableLookup implements Lookup {
  readonly calls: { client: string; name: string; type?: AddressType; ip?: string }[] = [];
  constructor(private readonly sandboxes: Sandbox[]) {}

  resolve(client: string, name: string, type: AddressType): ResolveResult {
    this.calls.push({ client, name, type });
    if (name === 'boom.mynet') throw new Error('controller bug');
    const seen = this.sandboxes.filter((s) => s.names.includes(name) && (!s.visibleTo || s.visibleTo.includes(client)));
    if (seen.length > 0) return { addresses: seen.flatMap((s) => (type === 'A' ? (s.v4 ?? []) : (s.v6 ?? []))) };
    return name.endsWith('.mynet') ? { notFound: true } : null;
  }

  reverse(client: string, ip: string): string[] | null {
    this.calls.push({ client, name: '', ip });
    if (ip.startsWith('172.18.')) {
      return this.sandboxes.filter((s) => s.v4?.includes(ip)).map((s) => `${s.names[0] as string}`);
    }
    if (ip.startsWith('fd00:18::')) return this.sandboxes.filter((s) => s.v6?.includes(ip)).map((s) => s.names[0] as string);
    return null;
  }
}

const web = { names: ['web.mynet', 'web'], v4: ['172.18.0.2'], v6: ['fd00:18::2'] };
const db = { names: ['db.mynet', 'db'], v4: ['172.18.0.3'] };
const replicas = ['172.18.0.10', '172.18.0.11', '172.18.0.12', '172.18.0.13', '172.18.0.14'];
const api = replicas.map((ip) => ({ names: ['api.mynet', 'api'], v4: [ip] }));
const secret = [
  { names: ['secret.mynet'], v4: ['172.18.0.20'], visibleTo: ['127.0.0.2'] },
  { names: ['secret.mynet'], v4: ['172.18.0.21'], visibleTo: ['127.0.0.3'] },
];
const many = Array.from({ length: 100 }, (_, i) => ({ names: ['many.mynet'], v4: [`172.18.1.${i}`] }));

// --- fake upstream servers ----------------------------------------------------

type UpstreamAnswer = dnsPacket.Packet | 'silence' | { delayMs: number; packet: dnsPacket.Packet };

/** A DNS server on loopback, UDP and TCP on one port, answering through a function. */
class FakeUpstream {
  readonly seen: { transport: 'udp' | 'tcp'; id: number; name: string; type: string }[] = [];
  private readonly conns = new Set<net.Socket>();

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly port: number,
    private readonly answer: (q: dnsPacket.DecodedPacket, transport: 'udp' | 'tcp') => UpstreamAnswer,
  ) {
    udp.on('message', (msg, rinfo) => {
      this.reply(msg, 'udp', (out) => udp.send(out, rinfo.port, rinfo.address));
    });
    tcp.on('connection', (sock) => {
      this.conns.add(sock);
      sock.on('close', () => this.conns.delete(sock));
      sock.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          this.reply(msg, 'tcp', (out) => sock.write(Buffer.concat([u16(out.length), out])));
        }
      });
    });
  }

  static async start(answer: (q: dnsPacket.DecodedPacket, transport: 'udp' | 'tcp') => UpstreamAnswer): Promise<FakeUpstream> {
    for (;;) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, HOST, r));
      const port = udp.address().port;
      const tcp = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, HOST, resolve);
        });
        return new FakeUpstream(udp, tcp, port, answer);
      } catch {
        udp.close();
      }
    }
  }

  get spec(): string {
    return `${HOST}:${this.port}`;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await Promise.all([new Promise<void>((r) => this.udp.close(() => r())), new Promise<void>((r) => this.tcp.close(() => r()))]);
  }

  private reply(msg: Buffer, transport: 'udp' | 'tcp', send: (out: Buffer) => void): void {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0];
    this.seen.push({ transport, id: q.id ?? 0, name: question?.name ?? '', type: question?.type ?? '' });
    const a = this.answer(q, transport);
    if (a === 'silence') return;
    const [delay, packet] = 'delayMs' in a ? [a.delayMs, a.packet] : [0, a];
    const out = dnsPacket.encode({ type: 'response', id: q.id, questions: q.questions, ...packet });
    if (delay > 0) setTimeout(() => send(out), delay).unref();
    else send(out);
  }
}

/** A loopback port where nothing listens: queries there get ICMP port unreachable. */
async function deadPort(): Promise<string> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return `${HOST}:${port}`;
}

/** A loopback UDP port that takes queries and never answers (and no TCP there). */
async function blackhole(): Promise<{ spec: string; close(): Promise<void> }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, r));
  return { spec: `${HOST}:${s.address().port}`, close: () => new Promise<void>((r) => s.close(() => r())) };
}

const forwarded = (q: dnsPacket.DecodedPacket): dnsPacket.Packet => ({
  flags: RA | (q.flags ?? 0),
  answers: [{ type: 'A', name: q.questions?.[0]?.name ?? '', ttl: 30, data: '192.0.2.7' }],
});

// --- clients --------------------------------------------------------------------

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

let nextId = 1000;
function query(name: string, type: dnsPacket.RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): dnsPacket.Packet {
  return { type: 'query', id: nextId++, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra };
}

function edns(size: number, version = 0): Partial<dnsPacket.Packet> {
  return {
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: version, flags: 0, flag_do: false, options: [] }],
  };
}

/** One query over UDP; raw bytes allowed. Resolves with the raw reply, or null on timeout. */
async function udpRaw(server: EmbeddedDns, msg: Buffer, opts: { from?: string; timeoutMs?: number } = {}): Promise<Buffer | null> {
  const { address, port, family } = server.address();
  const sock = dgram.createSocket(family === 'IPv6' ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, opts.from ?? (family === 'IPv6' ? '::1' : HOST), r));
  try {
    return await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), opts.timeoutMs ?? 3000);
      sock.on('message', (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      sock.send(msg, port, address);
    });
  } finally {
    sock.close();
  }
}

async function udpQuery(server: EmbeddedDns, q: dnsPacket.Packet, opts: { from?: string; timeoutMs?: number } = {}) {
  const raw = await udpRaw(server, dnsPacket.encode(q), opts);
  if (!raw) throw new Error(`no UDP reply to ${q.questions?.[0]?.name}`);
  return Object.assign(dnsPacket.decode(raw), { size: raw.length });
}

/** Several queries written at once on one TCP connection; replies by ID. */
async function tcpQueries(server: EmbeddedDns, qs: dnsPacket.Packet[]): Promise<Map<number, dnsPacket.DecodedPacket>> {
  const { address, port } = server.address();
  const sock = net.connect({ host: address, port });
  const replies = new Map<number, dnsPacket.DecodedPacket>();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${replies.size} of ${qs.length} TCP replies`)), 5000);
      let buf = Buffer.alloc(0);
      sock.on('error', reject);
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const p = dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          replies.set(p.id ?? -1, p);
        }
        if (replies.size === qs.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      sock.write(Buffer.concat(qs.map((q) => dnsPacket.streamEncode(q))));
    });
    return replies;
  } finally {
    sock.destroy();
  }
}

// --- the server under test -------------------------------------------------------

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A debug-level logger into memory: what the resolver refuses, it must say. */
function memoryLogger() {
  const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  return { logger, logs, messages: (level = 20) => logs.filter((l) => l.level === level).map((l) => l.msg) };
}

async function startDns(opts: Partial<EmbeddedDnsOptions> = {}, sandboxes: Sandbox[] = [web, db, ...api, ...secret, ...many]) {
  const lookup = new TableLookup(sandboxes);
  const log = memoryLogger();
  const dns = await EmbeddedDns.start({ bind: HOST, port: 0, lookup, upstreams: [], upstreamTimeoutMs: 300, logger: log.logger, ...opts });
  servers.push(dns);
  return { dns, lookup, log };
}

async function upstream(answer: (q: dnsPacket.DecodedPacket, t: 'udp' | 'tcp') => UpstreamAnswer = forwarded) {
  const u = await FakeUpstream.start(answer);
  servers.push(u);
  return u;
}

// --- tests -------------------------------------------------------------------------

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
