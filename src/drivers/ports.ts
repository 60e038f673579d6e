/**
 * Published host ports held by berthd, as Docker holds them: one socket per
 * port (per protocol and bind address), bound and never listened on. No
 * other program can take a published port later, a port some program
 * already uses is refused when it is published, and a connection that
 * reaches the host port itself (not translated: an allow-list refused it, or
 * an internal network's sandbox) is refused by the kernel. SCTP ports are not
 * held: this kernel may have no SCTP sockets. The sockets live as long as
 * berthd; the datapath does not need them.
 */
import type { Logger } from 'pino';
import { addon, isNativeError } from '../native/addon.js';
import type { PublishRecord } from '../store/model.js';

const key = (proto: string, ip: string, port: number) => `${proto}/${ip}/${port}`;

export class PortHolder {
  private readonly held = new Map<string, number>();
  /** ports whose hold failed and was said once (sync runs every few seconds) */
  private readonly warned = new Set<string>();
  /** the published ranges of the last sync */
  private synced: string | undefined;
  /** the published ranges of a sync that ran out of file descriptors: not walked again until they change */
  private exhausted: string | undefined;

  constructor(private readonly log: Logger) {
    const limit = addon().raiseNofile();
    log.debug({ limit }, 'open-file limit for held ports');
  }

  /** The first port of @p that a program other than berth holds, with why; null when all are free or berth's. */
  inUse(p: Pick<PublishRecord, 'hostIp' | 'hostPort' | 'count' | 'proto'>): string | null {
    if (p.proto === 'sctp') return null;
    for (let port = p.hostPort; port < p.hostPort + p.count; port++) {
      if (this.held.has(key(p.proto, p.hostIp, port))) continue;
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
    let noFiles = 0;
    for (const p of publishes) {
      if (p.proto === 'sctp' || p.unheld) continue;
      for (let port = p.hostPort; port < p.hostPort + p.count; port++) {
        const k = key(p.proto, p.hostIp, port);
        want.add(k);
        if (this.held.has(k)) continue;
        if (noFiles) {
          noFiles++;
          continue;
        }
        try {
          this.held.set(k, addon().portHold({ proto: p.proto, address: p.hostIp, port }));
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
    }
    for (const [k, fd] of this.held) {
      if (want.has(k)) continue;
      addon().portRelease(fd);
      this.held.delete(k);
    }
    this.exhausted = noFiles ? sig : undefined;
    if (noFiles) {
      this.warned.add('nofile');
      this.log.warn({ held: this.held.size, unheld: noFiles }, 'the open-file limit is reached: the other published host ports are not held (the datapath serves them; another program could bind them)');
    } else this.warned.delete('nofile');
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
