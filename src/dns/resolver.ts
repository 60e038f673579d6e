/**
 * The embedded DNS server berthd runs for user-defined networks, with
 * Docker's embedded-DNS semantics: names the controller knows are answered
 * here (which client may see which name is the controller's decision, made
 * in Lookup), every other name is forwarded to the upstream servers.
 *
 * Where Docker listens on 127.0.0.11 inside every container, berth listens
 * once per network on its gateway address in the host namespace, UDP and
 * TCP on the same port; a container's resolv.conf points there.
 *
 * Messages are decoded and encoded with dns-packet. Forwarded replies are
 * relayed as the upstream sent them (EDNS, DNSSEC records, types dns-packet
 * does not know all survive); only the header's ID and RA bit are rewritten.
 *
 * This file is the server (transports, local answers, forwarding policy);
 * message.ts holds the wire format, sockets.ts the listening sockets and
 * upstream.ts one exchange with an upstream.
 */
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Logger } from 'pino';
import { subsystemLogger } from '../log.js';
import {
  canonicalIPv6,
  formatHostPort,
  isEncodableName,
  normalizeName,
  parseUpstream,
  reverseNameToIp,
  type Upstream,
} from './names.js';
import { BADVERS, encodeReply, FORMERR, frame, isTruncated, NOERROR, NOTIMP, NXDOMAIN, parseQuery, REFUSED, SERVFAIL, takeFrames, type Query, type Transport } from './message.js';
import { closeServer, closeUdp, listen } from './sockets.js';
import { exchange } from './upstream.js';

export type AddressType = 'A' | 'AAAA';

/** null: not a name of ours, forward it upstream. */
export type ResolveResult = { addresses: string[] } | { notFound: true } | null;

/** What the controller answers; it alone decides what a client may see. */
export interface Lookup {
  /**
   * Addresses of `name` (lowercased, no trailing dot) of the given type, as
   * seen by the client at source address `client`. A name of ours without
   * addresses of that type (AAAA of an IPv4-only container) is
   * `{ addresses: [] }`: it is answered NOERROR without records, and so are
   * other query types (MX, TXT, ...) of names for which resolve(…, 'A') is not
   * null. `{ notFound: true }` answers NXDOMAIN.
   */
  resolve(client: string, name: string, type: AddressType): ResolveResult;
  /**
   * PTR names of a container address (IPv4 dotted, IPv6 in RFC 5952 text)
   * as seen by `client`; null forwards the query, [] answers NXDOMAIN.
   */
  reverse(client: string, ip: string): string[] | null;
  /**
   * The client's own upstream servers (a container's --dns), in the same
   * forms as EmbeddedDnsOptions.upstreams; null or [] uses the server's.
   */
  upstreams?(client: string): string[] | null;
  /**
   * Whether `client` may use this server at all (a sandbox of its network).
   * false: the query is dropped unanswered and counted, never forwarded; no
   * reply means nothing to reflect at a spoofed source. Absent: everyone.
   */
  admits?(client: string): boolean;
}

/** Forwarded queries one client may send: a token bucket of `burst` queries refilled at `perSecond`. */
export interface ForwardRate {
  perSecond: number;
  burst: number;
}

/** What the server turned away and forwarded, since it started. */
export interface DnsStats {
  /** queries from clients the lookup does not admit: dropped */
  notAdmitted: number;
  /** queries over a client's forwarding rate: REFUSED, not forwarded */
  rateLimited: number;
  /** queries sent on to the upstream servers */
  forwarded: number;
  /** forwarded queries no upstream answered (or none could be asked): SERVFAIL, or no reply */
  unanswered: number;
}

export interface EmbeddedDnsOptions {
  /** IPv4 or IPv6 address to listen on: a network's gateway address. */
  bind: string;
  /** Default 53; 0 picks a free port (the same for UDP and TCP). */
  port?: number;
  lookup: Lookup;
  /** '192.0.2.53', '192.0.2.53:5353', '[2001:db8::1]:5353'; tried in order. */
  upstreams: string[];
  /** Default: the 'dns' subsystem logger. */
  logger?: Logger;
  /** Per attempt (UDP, then TCP when truncated) and upstream; default 2000. */
  upstreamTimeoutMs?: number;
  /** Forwarded queries waiting for upstreams at once; beyond, SERVFAIL. Default 1024. */
  maxInFlight?: number;
  /** A TCP client with nothing pending is disconnected after this; default 10000. */
  tcpIdleTimeoutMs?: number;
  /** Per client address; default 100 a second, bursts of 200. Local answers are not limited. */
  forwardRate?: ForwardRate;
}

/** Docker's TTL for its embedded DNS answers. */
export const ANSWER_TTL = 600;

const DEFAULT_PORT = 53;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 2000;
const DEFAULT_MAX_IN_FLIGHT = 1024;
const DEFAULT_TCP_IDLE_MS = 10_000;
export const DEFAULT_FORWARD_RATE: ForwardRate = { perSecond: 100, burst: 200 };
// Buckets kept at most; full ones are forgotten first (they hold no debt).
const MAX_BUCKETS = 4096;
// A client hogging file descriptors cannot starve the others beyond this.
const MAX_TCP_CONNECTIONS = 256;
// Queries read ahead on one TCP connection before reading pauses.
const MAX_TCP_PIPELINE = 32;
type Outcome = { reply: Buffer } | { drop: 'malformed' | 'unanswerable' };

export class EmbeddedDns {
  /** cancels of the exchanges waiting for upstreams: close() ends them */
  private readonly waits = new Set<() => void>();
  private readonly conns = new Set<net.Socket>();
  private inFlight = 0;
  private closing: Promise<void> | undefined;
  private readonly counts: DnsStats = { notAdmitted: 0, rateLimited: 0, forwarded: 0, unanswered: 0 };
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    private readonly info: AddressInfo,
    private readonly lookup: Lookup,
    private readonly upstreams: Upstream[],
    private readonly log: Logger,
    private readonly upstreamTimeoutMs: number,
    private readonly maxInFlight: number,
    private readonly tcpIdleTimeoutMs: number,
    private readonly rate: ForwardRate,
  ) {
    udp.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    udp.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
    tcp.on('connection', (sock) => this.onConnection(sock));
    tcp.on('error', (err) => this.log.error({ err }, 'TCP server error'));
    tcp.on('drop', (d) => this.log.debug({ client: d?.remoteAddress, max: MAX_TCP_CONNECTIONS }, 'TCP connection refused: too many'));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
  }

  static async start(opts: EmbeddedDnsOptions): Promise<EmbeddedDns> {
    const family = net.isIP(opts.bind);
    if (family === 0) throw new TypeError(`bind address '${String(opts.bind)}' is not an IPv4 or IPv6 address`);
    const port = opts.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TypeError(`port ${String(port)} is not an integer in 0..65535`);
    }
    if (typeof opts.lookup?.resolve !== 'function' || typeof opts.lookup?.reverse !== 'function') {
      throw new TypeError('lookup must implement resolve(client, name, type) and reverse(client, ip)');
    }
    if (!Array.isArray(opts.upstreams)) throw new TypeError(`upstreams must be an array, got ${typeof opts.upstreams}`);
    const upstreams = opts.upstreams.map(parseUpstream);
    const timeout = positiveInteger('upstreamTimeoutMs', opts.upstreamTimeoutMs, DEFAULT_UPSTREAM_TIMEOUT_MS);
    const maxInFlight = positiveInteger('maxInFlight', opts.maxInFlight, DEFAULT_MAX_IN_FLIGHT);
    const idle = positiveInteger('tcpIdleTimeoutMs', opts.tcpIdleTimeoutMs, DEFAULT_TCP_IDLE_MS);
    const rate = opts.forwardRate ?? DEFAULT_FORWARD_RATE;
    if (!(rate.perSecond > 0) || !Number.isFinite(rate.perSecond)) throw new TypeError(`forwardRate.perSecond ${String(rate.perSecond)} is not a positive number`);
    if (!Number.isInteger(rate.burst) || rate.burst <= 0) throw new TypeError(`forwardRate.burst ${String(rate.burst)} is not a positive integer`);

    const { udp, tcp, info } = await listen(opts.bind, family === 6 ? 6 : 4, port);
    const self = upstreams.find((u) => u.port === info.port && sameAddress(u.host, opts.bind));
    if (self) {
      await Promise.all([closeUdp(udp), closeServer(tcp)]);
      throw new TypeError(
        `upstream '${formatHostPort(self.host, self.port)}' is this resolver's own address: queries would loop`,
      );
    }
    const log = (opts.logger ?? subsystemLogger('dns')).child({ listen: formatHostPort(info.address, info.port) });
    if (upstreams.length === 0) log.info('no upstream servers: names that are not ours get SERVFAIL');
    return new EmbeddedDns(udp, tcp, info, opts.lookup, upstreams, log, timeout, maxInFlight, idle, { ...rate });
  }

  /** Queries turned away so far. */
  stats(): DnsStats {
    return { ...this.counts };
  }

  /** Where the resolver listens (UDP and TCP). */
  address(): AddressInfo {
    return { ...this.info };
  }

  /** Stops listening, drops TCP clients and abandons queries waiting for upstreams. */
  close(): Promise<void> {
    if (!this.closing) {
      for (const cancel of [...this.waits]) cancel();
      for (const sock of this.conns) sock.destroy();
      this.closing = Promise.all([closeUdp(this.udp), closeServer(this.tcp)]).then(() => undefined);
    }
    return this.closing;
  }

  // --- transports ---------------------------------------------------------

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    void this.handle(msg, rinfo.address, 'udp').then((out) => {
      if (!('reply' in out) || this.closing) return;
      const notSent = (err: unknown) => this.log.debug({ err, client: rinfo.address, port: rinfo.port }, 'UDP reply not sent');
      try {
        this.udp.send(out.reply, rinfo.port, rinfo.address, (err) => err && notSent(err));
      } catch (err) {
        notSent(err); // a spoofed source port 0 throws here
      }
    });
  }

  private onConnection(sock: net.Socket): void {
    const client = sock.remoteAddress;
    if (!client || this.closing) {
      sock.destroy();
      return;
    }
    if (!this.admitted(client)) {
      this.counts.notAdmitted++;
      this.log.debug({ client }, 'TCP connection from outside the network closed');
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', (err) => this.log.debug({ err, client }, 'TCP client error'));
    sock.setNoDelay(true);
    sock.setTimeout(this.tcpIdleTimeoutMs);

    let pending = 0;
    let ended = false;
    let buffered: Buffer = Buffer.alloc(0);
    // Read ahead only while few replies are owed and the client keeps reading them.
    const flow = () => {
      if (pending >= MAX_TCP_PIPELINE || sock.writableNeedDrain) sock.pause();
      else sock.resume();
    };
    sock.on('drain', flow);
    // A client may send its queries and half-close: it still gets every reply.
    sock.on('end', () => {
      ended = true;
      if (pending === 0) sock.end();
    });
    sock.on('timeout', () => {
      // Idle means nothing owed either: a slow upstream does not cut a client off.
      if (pending > 0) sock.setTimeout(this.tcpIdleTimeoutMs);
      else {
        this.log.debug({ client }, 'idle TCP client disconnected');
        sock.destroy();
      }
    });
    sock.on('data', (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      let frames: Buffer[];
      [frames, buffered] = takeFrames(buffered);
      for (const msg of frames) {
        pending++;
        void this.handle(msg, client, 'tcp').then((out) => {
          pending--;
          if ('drop' in out) {
            // A stream that carried garbage cannot be trusted to be in sync again.
            if (out.drop === 'malformed') sock.destroy();
          } else if (sock.writable) {
            sock.write(frame(out.reply));
          }
          if (sock.destroyed) return;
          if (ended && pending === 0) sock.end();
          else flow();
        });
      }
      flow();
    });
  }

  // --- queries ------------------------------------------------------------

  /** Never rejects: a bug in one query must not take the server down. */
  private async handle(raw: Buffer, client: string, transport: Transport): Promise<Outcome> {
    try {
      if (!this.admitted(client)) {
        this.counts.notAdmitted++;
        this.log.debug({ client, transport }, 'query from outside the network dropped');
        return { drop: 'malformed' };
      }
      const q = parseQuery(raw, client, transport);
      if (!q) {
        this.log.debug({ client, transport, bytes: raw.length }, 'malformed DNS message ignored');
        return { drop: 'malformed' };
      }
      const ctx = { client, transport, id: q.packet.id, name: q.question?.name, type: q.question?.type };
      if (q.packet.type === 'response') {
        // Answering responses would let two resolvers ping-pong forever.
        this.log.debug(ctx, 'DNS response ignored: not a query');
        return { drop: 'malformed' };
      }
      const opcode = ((q.packet.flags ?? 0) >> 11) & 0xf;
      if (opcode !== 0) {
        this.log.debug({ ...ctx, opcode }, 'opcode not implemented: NOTIMP');
        return { reply: encodeReply(q, NOTIMP, [], { aa: false }) };
      }
      if (!q.question) {
        this.log.debug({ ...ctx, questions: q.packet.questions?.length }, 'not exactly one question: FORMERR');
        return { reply: encodeReply(q, FORMERR, [], { aa: false }) };
      }
      if ((q.packet.additionals ?? []).filter((a) => a.type === 'OPT').length > 1) {
        this.log.debug(ctx, 'several OPT records: FORMERR');
        return { reply: encodeReply(q, FORMERR, [], { aa: false }) };
      }
      if (q.opt && q.opt.ednsVersion > 0) {
        this.log.debug({ ...ctx, ednsVersion: q.opt.ednsVersion }, 'EDNS version not supported: BADVERS');
        return { reply: encodeReply(q, BADVERS, [], { aa: false }) };
      }
      const local = this.answerLocally(q);
      if (local) return { reply: local };
      return await this.forward(q);
    } catch (err) {
      this.log.error({ err, client, transport }, 'query failed');
      return { drop: 'unanswerable' };
    }
  }

  /** Our own reply, or undefined when the name is not ours. */
  private answerLocally(q: Query): Buffer | undefined {
    const question = q.question as dnsPacket.Question;
    // Our names live in class IN only; a question we cannot echo exactly is forwarded raw.
    if (!q.echoable || (question.class ?? 'IN') !== 'IN') return undefined;
    const name = normalizeName(question.name);
    if (name === '') return undefined;
    const ctx = { client: q.client, transport: q.transport, name, type: question.type };
    try {
      const ip = reverseNameToIp(name);
      if (ip !== null) {
        const names = this.lookup.reverse(q.client, ip);
        if (names === null) return undefined;
        if (names.length === 0) {
          this.log.debug({ ...ctx, ip }, 'reverse name of ours without a container: NXDOMAIN');
          return encodeReply(q, NXDOMAIN);
        }
        if (question.type !== 'PTR') return encodeReply(q, NOERROR);
        const valid = names.filter((n) => {
          if (isEncodableName(n)) return true;
          this.log.warn({ ...ctx, ip, ptr: n }, 'lookup returned a name that cannot be encoded: left out');
          return false;
        });
        const answers = valid.map((n): dnsPacket.Answer => ({ type: 'PTR', name: question.name, class: 'IN', ttl: ANSWER_TTL, data: n }));
        this.log.trace({ ...ctx, answers: valid }, 'answered');
        return encodeReply(q, NOERROR, answers);
      }

      const addressType: AddressType = question.type === 'AAAA' ? 'AAAA' : 'A';
      const found = this.lookup.resolve(q.client, name, addressType);
      if (found === null) return undefined;
      if ('notFound' in found) {
        this.log.debug(ctx, 'name of ours not found: NXDOMAIN');
        return encodeReply(q, NXDOMAIN);
      }
      if (question.type !== 'A' && question.type !== 'AAAA') {
        this.log.debug(ctx, 'no records of this type for a name of ours: NODATA');
        return encodeReply(q, NOERROR);
      }
      const fits = addressType === 'A' ? net.isIPv4 : net.isIPv6;
      const addresses = shuffle(
        found.addresses.filter((a) => {
          if (fits(a)) return true;
          const family = addressType === 'A' ? 'IPv4' : 'IPv6';
          this.log.warn({ ...ctx, address: a }, `lookup returned an address that is not ${family}: left out`);
          return false;
        }),
      );
      if (addresses.length === 0) this.log.debug(ctx, 'no addresses of this type: NODATA');
      else this.log.trace({ ...ctx, answers: addresses }, 'answered');
      const answers = addresses.map(
        (a): dnsPacket.Answer => ({ type: addressType, name: question.name, class: 'IN', ttl: ANSWER_TTL, data: a }),
      );
      return encodeReply(q, NOERROR, answers);
    } catch (err) {
      this.log.error({ ...ctx, err }, 'lookup failed: SERVFAIL');
      return encodeReply(q, SERVFAIL, [], { aa: false });
    }
  }

  // --- forwarding ---------------------------------------------------------

  /**
   * Tries the upstreams in order; the first real answer wins. Like Docker, a
   * SERVFAIL or REFUSED moves on to the next one and is relayed only when no
   * upstream does better. A TCP client is forwarded over TCP: it has already
   * been told (TC) that the answer is too big for UDP, or insists on TCP.
   */
  /** The client's own upstreams when the lookup names some, else the server's. */
  private upstreamsFor(client: string): Upstream[] {
    let specs: string[] | null | undefined;
    try {
      specs = this.lookup.upstreams?.(client);
    } catch (err) {
      this.log.error({ client, err }, 'lookup.upstreams failed: using the server\'s upstreams');
    }
    if (!specs?.length) return this.upstreams;
    const out: Upstream[] = [];
    for (const spec of specs) {
      let up = this.parsedUpstreams.get(spec);
      if (!up) {
        try {
          up = parseUpstream(spec);
        } catch (err) {
          this.log.warn({ client, spec, err: String(err) }, 'ignoring an invalid per-client upstream');
          continue;
        }
        this.parsedUpstreams.set(spec, up);
      }
      out.push(up);
    }
    return out.length ? out : this.upstreams;
  }

  private readonly parsedUpstreams = new Map<string, Upstream>();

  private admitted(client: string): boolean {
    if (!this.lookup.admits) return true;
    try {
      return this.lookup.admits(client);
    } catch (err) {
      this.log.error({ client, err }, 'lookup.admits failed: query dropped');
      return false;
    }
  }

  /** Takes one token of @client's bucket; false when it is empty. */
  private takeToken(client: string): boolean {
    const now = performance.now();
    let b = this.buckets.get(client);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) this.forgetFullBuckets(now);
      b = { tokens: this.rate.burst, at: now };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(this.rate.burst, b.tokens + ((now - b.at) / 1000) * this.rate.perSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private forgetFullBuckets(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate.perSecond >= this.rate.burst) this.buckets.delete(k);
    }
    // Everyone in debt: the oldest goes (a client cannot grow the map without bound).
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
  }

  private async forward(q: Query): Promise<Outcome> {
    const ctx = { client: q.client, transport: q.transport, name: q.question?.name, type: q.question?.type };
    if (!this.takeToken(q.client)) {
      this.counts.rateLimited++;
      this.log.debug(ctx, 'client over its forwarding rate: REFUSED');
      return q.echoable ? { reply: encodeReply(q, REFUSED, [], { aa: false }) } : { drop: 'unanswerable' };
    }
    const upstreams = this.upstreamsFor(q.client);
    if (upstreams.length === 0) {
      this.log.debug(ctx, 'no upstream servers: SERVFAIL');
      this.counts.unanswered++;
      return this.failure(q);
    }
    if (this.inFlight >= this.maxInFlight) {
      this.log.debug({ ...ctx, inFlight: this.inFlight }, 'too many forwarded queries in flight: SERVFAIL');
      this.counts.unanswered++;
      return this.failure(q);
    }
    this.inFlight++;
    this.counts.forwarded++;
    let fallback: Buffer | undefined;
    try {
      for (const up of upstreams) {
        if (this.closing) break;
        const upstream = formatHostPort(up.host, up.port);
        try {
          let reply = await exchange(up, q, q.transport, this.waits, this.upstreamTimeoutMs);
          if (q.transport === 'udp' && isTruncated(reply)) {
            try {
              const full = await exchange(up, q, 'tcp', this.waits, this.upstreamTimeoutMs);
              // Still too big for the client: it gets TC and comes back over TCP.
              if (full.length <= q.maxSize) reply = full;
            } catch (err) {
              this.log.debug({ ...ctx, upstream, err: String(err) }, 'TCP retry of a truncated reply failed: relaying it truncated');
            }
          }
          const rcode = reply.readUInt16BE(2) & 0xf;
          if (rcode === SERVFAIL || rcode === REFUSED) {
            this.log.debug({ ...ctx, upstream, rcode }, 'upstream failed the query: trying the next');
            fallback = reply;
            continue;
          }
          return { reply: this.relay(q, reply) };
        } catch (err) {
          this.log.debug({ ...ctx, upstream, err: String(err) }, 'upstream did not answer: trying the next');
        }
      }
    } finally {
      this.inFlight--;
    }
    if (fallback) return { reply: this.relay(q, fallback) };
    this.log.debug(ctx, 'no upstream answered: SERVFAIL');
    this.counts.unanswered++;
    return this.failure(q);
  }

  private failure(q: Query): Outcome {
    // Without an exact echo of the question a reply would not match; let the client time out.
    return q.echoable ? { reply: encodeReply(q, SERVFAIL, [], { aa: false }) } : { drop: 'unanswerable' };
  }

  /** An upstream reply with the client's ID, RA set, and within what the client accepts. */
  private relay(q: Query, reply: Buffer): Buffer {
    if (reply.length > q.maxSize && q.echoable) {
      // Cut to header and question, TC set: the client retries over TCP.
      return encodeReply(q, reply.readUInt16BE(2) & 0xf, [], { aa: false, tc: true });
    }
    const out = Buffer.from(reply);
    out.writeUInt16BE(q.packet.id ?? 0, 0);
    out.writeUInt16BE(out.readUInt16BE(2) | dnsPacket.RECURSION_AVAILABLE, 2);
    return out;
  }

}

// --- helpers -----------------------------------------------------------------

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new TypeError(`${name} ${String(value)} is not a positive integer`);
  return value;
}

function sameAddress(a: string, b: string): boolean {
  if (net.isIPv6(a) && net.isIPv6(b)) return canonicalIPv6(a) === canonicalIPv6(b);
  return a === b;
}

/** Fisher–Yates: each multi-address answer comes in a fresh order (round-robin DNS). */
function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}
