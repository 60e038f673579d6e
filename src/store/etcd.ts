/**
 * The cluster store: etcd, reached with the etcd3 client. berth keeps only
 * what hosts must agree on there (hosts, global networks, their address
 * allocations and endpoints); each host's own sandboxes stay in its embedded
 * store. Every call is bounded in time: while etcd is unreachable an
 * operation that needs it fails within a few seconds with an 'unavailable'
 * error naming the store, instead of hanging, and the last view read stays
 * in use. The watch reconnects by itself; after a reconnect the whole prefix
 * is read again, so nothing missed during the outage is lost.
 */
import { EventEmitter } from 'node:events';
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { BerthError, badRequest } from '../errors.js';

/** How long one store operation may take before it fails as 'unavailable'. */
export const STORE_TIMEOUT_MS = 3000;

/** The watch retries every second (not with backoff up to 30 s): a returning etcd is seen at once. */
interface Backoff {
  readonly duration: number;
  next(): Backoff;
}
const WATCH_RETRY: Backoff = { duration: 1000, next: () => WATCH_RETRY };

export interface EtcdEndpoints {
  /** as given, for messages */
  url: string;
  /** http://host:port, as the client takes them */
  hosts: string[];
  tls: boolean;
}

/** Parses `etcd://HOST:PORT[,HOST:PORT...]` (or etcds:// for TLS); a bad value is named. */
export function parseEtcdUrl(url: string): EtcdEndpoints {
  const m = /^(etcds?):\/\/(.+)$/.exec(url);
  if (!m) throw badRequest(`--store '${url}' is not etcd://HOST:PORT[,HOST:PORT...]`);
  const tls = m[1] === 'etcds';
  const hosts = m[2]!.split(',').map((hp) => {
    const hm = /^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(hp);
    if (!hm || Number(hm[2]) < 1 || Number(hm[2]) > 65535) throw badRequest(`--store '${url}': '${hp}' is not HOST:PORT`);
    return `${tls ? 'https' : 'http'}://${hm[1]}:${hm[2]}`;
  });
  return { url, hosts, tls };
}

export interface EtcdTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * A prefix of etcd as a JSON key-value map kept current by a watch.
 * Emits 'changed' (debounced) when the view changed, 'connected' and
 * 'disconnected' as the watch stream comes and goes.
 */
export class EtcdStore extends EventEmitter {
  private readonly client: Etcd3;
  private readonly view = new Map<string, unknown>();
  private watcher: Watcher | undefined;
  private leases = new Map<string, Lease>();
  private changeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** false while the watch is down: the view may be stale */
  connected = false;

  constructor(
    readonly endpoints: EtcdEndpoints,
    readonly prefix: string,
    private readonly log: Logger,
    tls: EtcdTls = {},
  ) {
    super();
    this.client = new Etcd3({
      hosts: endpoints.hosts,
      dialTimeout: STORE_TIMEOUT_MS,
      ...(endpoints.tls ? { credentials: { rootCertificate: tls.ca ?? Buffer.alloc(0), ...(tls.cert ? { certChain: tls.cert } : {}), ...(tls.key ? { privateKey: tls.key } : {}) } } : {}),
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + STORE_TIMEOUT_MS }),
      faultHandling: { watchBackoff: WATCH_RETRY },
    });
  }

  /** Reads the whole prefix and starts watching it; rejects (as 'unavailable') when etcd cannot be reached. */
  async start(): Promise<void> {
    await this.resync();
    if (this.watcher) {
      // A retried start: the watch made by the first one is still ours.
      this.connected = true;
      return;
    }
    this.watcher = await this.bounded('watch', this.client.watch().prefix(this.prefix).create());
    this.connected = true;
    this.watcher.on('put', (kv) => {
      this.view.set(kv.key.toString(), parse(kv.value));
      this.changed();
    });
    this.watcher.on('delete', (kv) => {
      this.view.delete(kv.key.toString());
      this.changed();
    });
    this.watcher.on('disconnected', () => {
      if (!this.connected) return;
      this.connected = false;
      this.log.warn({ store: this.endpoints.url }, 'cluster store unreachable: keeping the last known state');
      this.emit('disconnected');
    });
    this.watcher.on('connected', () => {
      if (this.connected) return;
      // Events may have been missed while the stream was down: read everything again.
      this.resync().then(
        () => {
          this.connected = true;
          this.log.info({ store: this.endpoints.url }, 'cluster store reachable again');
          this.emit('connected');
        },
        (e: unknown) => this.log.warn({ err: e }, 'cluster store resync failed; the watch will retry'),
      );
    });
    this.watcher.on('error', (e) => this.log.warn({ err: e }, 'cluster store watch error'));
  }

  private async resync(): Promise<void> {
    const all = await this.bounded('read', this.client.getAll().prefix(this.prefix).strings());
    this.view.clear();
    for (const [k, v] of Object.entries(all)) this.view.set(k, parse(v));
    this.changed();
  }

  private changed(): void {
    if (this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      if (!this.closed) this.emit('changed');
    }, 20);
  }

  /** The entries under @sub (relative to the prefix), as last seen. */
  list<T>(sub: string): Map<string, T> {
    const p = this.prefix + sub;
    const out = new Map<string, T>();
    for (const [k, v] of this.view) if (k.startsWith(p)) out.set(k.slice(p.length), v as T);
    return out;
  }

  get<T>(key: string): T | undefined {
    return this.view.get(this.prefix + key) as T | undefined;
  }

  /** Whether @key exists in etcd now (not as last seen: the watch may lag a write). */
  async exists(key: string): Promise<boolean> {
    return (await this.bounded(`read ${key}`, this.client.get(this.prefix + key).string())) !== null;
  }

  /** Writes @value at @key unless the key exists; false when it did. Also records it in the view. */
  async create(key: string, value: unknown): Promise<boolean> {
    const k = this.prefix + key;
    const r = await this.bounded(`create ${key}`, this.client.if(k, 'Create', '==', 0).then(this.client.put(k).value(JSON.stringify(value))).commit());
    if (r.succeeded) this.view.set(k, value);
    return r.succeeded;
  }

  /** Writes every entry of @entries only if none of @absent exists; false otherwise. */
  async createAll(absent: string[], entries: Record<string, unknown>): Promise<boolean> {
    const cmp = absent.map((a) => ['Create', '==', 0, a] as const);
    let txn = this.client.if(this.prefix + cmp[0]![3], 'Create', '==', 0);
    for (const c of cmp.slice(1)) txn = txn.and(this.prefix + c[3], 'Create', '==', 0);
    const r = await this.bounded('create', txn.then(...Object.entries(entries).map(([k, v]) => this.client.put(this.prefix + k).value(JSON.stringify(v)))).commit());
    if (r.succeeded) for (const [k, v] of Object.entries(entries)) this.view.set(this.prefix + k, v);
    return r.succeeded;
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.bounded(`write ${key}`, this.client.put(this.prefix + key).value(JSON.stringify(value)).exec());
    this.view.set(this.prefix + key, value);
  }

  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) {
      await this.bounded(`delete ${key}`, this.client.delete().key(this.prefix + key).exec());
      this.view.delete(this.prefix + key);
    }
  }

  /**
   * Keeps @key = @value alive while this process lives (a lease of @ttl
   * seconds with keepalive); when the lease is lost (an outage longer than
   * the TTL) it is granted anew and the key written again.
   */
  async putLeased(key: string, value: unknown, ttl: number): Promise<void> {
    const grant = async (): Promise<void> => {
      const lease = this.client.lease(ttl, { autoKeepAlive: true });
      lease.on('lost', () => {
        if (this.closed) return;
        this.log.warn({ key }, 'cluster store lease lost: registering again');
        this.leases.delete(key);
        const retry = () => {
          if (this.closed) return;
          grant().catch(() => setTimeout(retry, 1000).unref());
        };
        retry();
      });
      try {
        await this.bounded(`register ${key}`, lease.put(this.prefix + key).value(JSON.stringify(value)).exec());
      } catch (e) {
        lease.release();
        throw e;
      }
      this.leases.set(key, lease);
      this.view.set(this.prefix + key, value);
    };
    await grant();
  }

  /** Races @p against the store timeout; any failure becomes an 'unavailable' error naming the store. */
  private async bounded<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${STORE_TIMEOUT_MS} ms`)), STORE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([p, timeout]);
    } catch (e) {
      throw new BerthError('unavailable', `cluster store ${this.endpoints.url}: ${what} failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.changeTimer) clearTimeout(this.changeTimer);
    // Leases are released passively, not revoked: a berthd that stops for a restart stays registered until the TTL.
    for (const l of this.leases.values()) l.release();
    // Cancelling a watch waits for etcd's answer: not for long when etcd is gone.
    const w = this.watcher?.cancel().catch(() => undefined);
    await Promise.race([w, new Promise((r) => setTimeout(r, 500).unref())]);
    this.client.close();
  }
}

function parse(v: Buffer | string | null | undefined): unknown {
  if (v === null || v === undefined) return undefined;
  try {
    return JSON.parse(v.toString());
  } catch {
    return undefined;
  }
}
