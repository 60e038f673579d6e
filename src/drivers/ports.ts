/**
 * Published host ports held by berthd, as Docker holds them: one socket per
 * port (per protocol and bind address), bound and never listened on. No
 * other program can take a published port later, a port some program
 * already uses is refused when it is published, and a connection that
 * reaches the host port itself (not translated: an allow-list refused it, or
 * an internal network's sandbox) is refused by the kernel. SCTP ports are not
 * held: this kernel may have no SCTP sockets. The sockets live as long as
 * berthd; the datapath does not need them.
 *
 * Held sockets never take the last file descriptors: berthd keeps a reserve
 * (a quarter of its open-file limit, at most 4,096) for its netlink sockets,
 * namespaces, the API and the store, so a host with more published ports than
 * that budget still runs; the ports past it are served by the datapath, not held.
 */
import type { Logger } from 'pino';
import { addon, isNativeError } from '../native/addon.js';
import type { PublishRecord } from '../store/model.js';

const key = (proto: string, ip: string, port: number) => `${proto}/${ip}/${port}`;

/** How many ports may be held under an open-file limit of @limit: the rest is berthd's reserve. */
export function holdBudget(limit: number): number {
  return Math.max(0, limit - Math.min(4096, Math.floor(limit / 4)));
}

export class PortHolder {
  private readonly held = new Map<string, number>();
  /** ports whose hold failed and was said once (sync runs every few seconds) */
  private readonly warned = new Set<string>();
  /** the published ranges of the last sync */
  private synced: string | undefined;
  /** the published ranges of a sync that ran out of file descriptors: not walked again until they change */
  private exhausted: string | undefined;
  /** the most sockets held at once (holdBudget of the open-file limit) */
  readonly budget: number;

  constructor(private readonly log: Logger) {
    const limit = addon().raiseNofile();
    this.budget = holdBudget(limit);
    log.debug({ limit, budget: this.budget }, 'open-file limit for held ports');
  }

  /**
   * The first port of @p that a program other than berth holds, with why;
   * null when all are free or berth's. A free port is held at once (one
   * socket a port, not a probe now and a hold after the commit): the next
   * sync() keeps it when it was published, and releases it when the change
   * did not go through.
   */
  inUse(p: Pick<PublishRecord, 'hostIp' | 'hostPort' | 'count' | 'proto'>): string | null {
    if (p.proto === 'sctp') return null;
    for (let port = p.hostPort; port < p.hostPort + p.count; port++) {
      const k = key(p.proto, p.hostIp, port);
      if (this.held.has(k)) continue;
      // past the budget a port is only probed: held sockets never take berthd's reserve
      if (this.held.size < this.budget) try {
        this.held.set(k, addon().portHold({ proto: p.proto, address: p.hostIp, port }));
        this.warned.delete(k);
        // held before any sync() saw it published: the next one keeps or releases it
        this.synced = undefined;
        continue;
      } catch (e) {
        // out of files: the probe below says whether another program has it (sync() says why it is not held)
        if (!isNativeError(e) || !['EADDRINUSE', 'EMFILE', 'ENFILE'].includes(e.code ?? '')) throw e;
      }
      try {
        // SO_REUSEADDR for the probe: connections in TIME_WAIT on the port are no one's.
        addon().portRelease(addon().portHold({ proto: p.proto, address: p.hostIp, port, reuse: true }));
      } catch (e) {
        if (isNativeError(e) && e.code === 'EADDRINUSE') return `host port ${p.hostIp ? `${p.hostIp}:` : ''}${port}/${p.proto} is in use on this host by another program`;
        throw e;
      }
    }
    return null;
  }

  /** Holds exactly the ports of @publishes; a port that cannot be held is logged, never fatal (the datapath works without). */
  sync(publishes: PublishRecord[]): void {
    // Runs after every operation: when the published ranges are as last time and every port is held, there is nothing to do
    // (the walk below is per port, so a 10,000-port range would cost it on every change).
    const sig = publishes.map((p) => `${p.proto}/${p.hostIp}/${p.hostPort}+${p.count}`).join(',');
    if (sig === this.synced && (this.warned.size === 0 || sig === this.exhausted)) return;
    this.synced = sig;
    const want = new Set<string>();
    for (const p of publishes) {
      if (p.proto === 'sctp' || p.unheld) continue;
      for (let port = p.hostPort; port < p.hostPort + p.count; port++) want.add(key(p.proto, p.hostIp, port));
    }
    // release first: a port no longer published frees its descriptor for one that is
    for (const [k, fd] of this.held) {
      if (want.has(k)) continue;
      addon().portRelease(fd);
      this.held.delete(k);
    }
    let noFiles = 0;
    for (const k of want) {
      if (this.held.has(k)) continue;
      if (noFiles || this.held.size >= this.budget) {
        noFiles++;
        continue;
      }
      const [proto, ip, port] = k.split('/') as ['tcp' | 'udp', string, string];
      try {
        this.held.set(k, addon().portHold({ proto, address: ip, port: Number(port) }));
        this.warned.delete(k);
      } catch (e) {
        if (isNativeError(e) && (e.code === 'EMFILE' || e.code === 'ENFILE')) {
          noFiles = 1;
          continue;
        }
        // Usually connections still in TIME_WAIT on it: the next change (or the drift check) tries again.
        if (!this.warned.has(k)) this.log.warn({ port: k, err: (e as Error).message }, 'a published host port could not be held yet: another program may take it');
        this.warned.add(k);
      }
    }
    this.exhausted = noFiles ? sig : undefined;
    if (noFiles) {
      this.warned.add('nofile');
      this.log.warn({ held: this.held.size, unheld: noFiles, budget: this.budget }, 'the open-file budget for held ports is reached: the other published host ports are not held (the datapath serves them; another program could bind them)');
    } else this.warned.delete('nofile');
  }

  /** Nothing to retry: the last sync's ports are all held (or the budget is spent on them) and none was held since. */
  get settled(): boolean {
    return this.synced !== undefined && (this.warned.size === 0 || this.synced === this.exhausted);
  }

  get count(): number {
    return this.held.size;
  }

  close(): void {
    for (const fd of this.held.values()) addon().portRelease(fd);
    this.held.clear();
    this.synced = undefined;
  }
}
