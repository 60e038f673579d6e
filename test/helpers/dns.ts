/**
 * What the embedded DNS's tests share (src/dns/*.test.ts): a fake
 * controller lookup over a fixed table of sandboxes, fake upstream servers on
 * loopback, and clients that are dns-packet over dgram/net. Loopback only.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { pino } from 'pino';
import { EmbeddedDns, type AddressType, type EmbeddedDnsOptions, type Lookup, type ResolveResult } from '../../src/dns/resolver.js';

export const HOST = '127.0.0.1';
export const AA = dnsPacket.AUTHORITATIVE_ANSWER;
export const RA = dnsPacket.RECURSION_AVAILABLE;
export const TC = dnsPacket.TRUNCATED_RESPONSE;
export const rcodeOf = (p: dnsPacket.Packet) => (p.flags ?? 0) & 0xf;
export const dataOf = (p: dnsPacket.Packet | undefined) => (p?.answers ?? []).map((a) => ('data' in a ? a.data : undefined));

// --- the controller's side, faked -------------------------------------------

export interface Sandbox {
  names: string[];
  v4?: string[];
  v6?: string[];
  /** Clients (source addresses) that may see it; every client when absent. */
  visibleTo?: string[];
}

/** A lookup over a fixed table; names under '.mynet' it does not know are NXDOMAIN. */
export class TableLookup implements Lookup {
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

export const web = { names: ['web.mynet', 'web'], v4: ['172.18.0.2'], v6: ['fd00:18::2'] };
export const db = { names: ['db.mynet', 'db'], v4: ['172.18.0.3'] };
export const replicas = ['172.18.0.10', '172.18.0.11', '172.18.0.12', '172.18.0.13', '172.18.0.14'];
export const api = replicas.map((ip) => ({ names: ['api.mynet', 'api'], v4: [ip] }));
export const secret = [
  { names: ['secret.mynet'], v4: ['172.18.0.20'], visibleTo: ['127.0.0.2'] },
  { names: ['secret.mynet'], v4: ['172.18.0.21'], visibleTo: ['127.0.0.3'] },
];
export const many = Array.from({ length: 100 }, (_, i) => ({ names: ['many.mynet'], v4: [`172.18.1.${i}`] }));

// --- fake upstream servers ----------------------------------------------------

export type UpstreamAnswer = dnsPacket.Packet | 'silence' | { delayMs: number; packet: dnsPacket.Packet };

/** A DNS server on loopback, UDP and TCP on one port, answering through a function. */
export class FakeUpstream {
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
export async function deadPort(): Promise<string> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return `${HOST}:${port}`;
}

/** A loopback UDP port that takes queries and never answers (and no TCP there). */
export async function blackhole(): Promise<{ spec: string; close(): Promise<void> }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, r));
  return { spec: `${HOST}:${s.address().port}`, close: () => new Promise<void>((r) => s.close(() => r())) };
}

export const forwarded = (q: dnsPacket.DecodedPacket): dnsPacket.Packet => ({
  flags: RA | (q.flags ?? 0),
  answers: [{ type: 'A', name: q.questions?.[0]?.name ?? '', ttl: 30, data: '192.0.2.7' }],
});

// --- clients --------------------------------------------------------------------

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export let nextId = 1000;
export function query(name: string, type: dnsPacket.RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): dnsPacket.Packet {
  return { type: 'query', id: nextId++, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra };
}

export function edns(size: number, version = 0): Partial<dnsPacket.Packet> {
  return {
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: version, flags: 0, flag_do: false, options: [] }],
  };
}

/** One query over UDP; raw bytes allowed. Resolves with the raw reply, or null on timeout. */
export async function udpRaw(server: EmbeddedDns, msg: Buffer, opts: { from?: string; timeoutMs?: number } = {}): Promise<Buffer | null> {
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

export async function udpQuery(server: EmbeddedDns, q: dnsPacket.Packet, opts: { from?: string; timeoutMs?: number } = {}) {
  const raw = await udpRaw(server, dnsPacket.encode(q), opts);
  if (!raw) throw new Error(`no UDP reply to ${q.questions?.[0]?.name}`);
  return Object.assign(dnsPacket.decode(raw), { size: raw.length });
}

/** Several queries written at once on one TCP connection; replies by ID. */
export async function tcpQueries(server: EmbeddedDns, qs: dnsPacket.Packet[], opts: { from?: string } = {}): Promise<Map<number, dnsPacket.DecodedPacket>> {
  const { address, port } = server.address();
  const sock = net.connect({ host: address, port, ...(opts.from ? { localAddress: opts.from } : {}) });
  const replies = new Map<number, dnsPacket.DecodedPacket>();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${replies.size} of ${qs.length} TCP replies`)), 5000);
      let buf = Buffer.alloc(0);
      sock.on('error', reject);
      sock.on('close', () => reject(new Error(`TCP connection closed after ${replies.size} of ${qs.length} replies`)));
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

export const servers: { close(): Promise<void> }[] = [];
/** Each test file's afterEach: what the test started goes. */
export async function closeServers(): Promise<void> {
  await Promise.all(servers.splice(0).map((s) => s.close()));
}

/** A debug-level logger into memory: what the resolver refuses, it must say. */
export function memoryLogger() {
  const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  return { logger, logs, messages: (level = 20) => logs.filter((l) => l.level === level).map((l) => l.msg) };
}

export async function startDns(opts: Partial<EmbeddedDnsOptions> = {}, sandboxes: Sandbox[] = [web, db, ...api, ...secret, ...many]) {
  const lookup = new TableLookup(sandboxes);
  const log = memoryLogger();
  const dns = await EmbeddedDns.start({ bind: HOST, port: 0, lookup, upstreams: [], upstreamTimeoutMs: 300, logger: log.logger, ...opts });
  servers.push(dns);
  return { dns, lookup, log };
}

export async function upstream(answer: (q: dnsPacket.DecodedPacket, t: 'udp' | 'tcp') => UpstreamAnswer = forwarded) {
  const u = await FakeUpstream.start(answer);
  servers.push(u);
  return u;
}
