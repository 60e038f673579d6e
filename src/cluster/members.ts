/**
 * Host lifecycle as this host sees it: which hosts of the cluster are ready
 * (their leased registration, hosts/<id>, is in the store), which lapsed (it
 * expired: berthd gone for HOST_TTL seconds, killed, stopped, cut off), and
 * which have been lapsed for longer than the grace period: their endpoints
 * are then withdrawn here (no tunnel, ARP, route or DNS entries for them)
 * and come back when the host registers again. Nothing is deleted from the
 * store: each host decides from what it sees, so a host that returns gets
 * everything back without anyone rewriting it.
 *
 * Known hosts are the durable members/<id> records (written by each host when
 * it joins), the registered ones, and the hosts of endpoints in the store
 * (those of berth versions that wrote no member record).
 *
 * Events (on the Cluster): 'host-lapsed' (MemberView) when a host's
 * endpoints are withdrawn, 'host-returned' (MemberView) when a withdrawn
 * host registers again; each is followed by 'changed'. Anything that keeps
 * per-host state (tunnels, routes, policy) subscribes to these or reads
 * Cluster's filtered views, which already leave withdrawn hosts out.
 */
import type { Logger } from 'pino';
import type { NodeView } from '../controller/core.js';

export interface HostRecord {
  id: string;
  name: string;
  underlay: string;
  since: string;
}

export type MemberView = NodeView;

/** What Members reads of the cluster store. */
export interface MemberSource {
  readonly hostId: string;
  readonly connected: boolean;
  registered(): HostRecord[];
  members(): HostRecord[];
  /** host id of each endpoint in the store */
  endpointHosts(): string[];
  emit(event: string, ...args: unknown[]): boolean;
}

export class Members {
  /** host id -> when this berthd first saw its registration gone (ms) */
  private readonly lapsedAt = new Map<string, number>();
  /** host id -> when it was last seen registered (ms) */
  private readonly seenAt = new Map<string, number>();
  private readonly withdrawnSet = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly started = Date.now();

  constructor(
    private readonly src: MemberSource,
    /** seconds a registration may stay lapsed before the host's endpoints are withdrawn */
    readonly graceSeconds: number,
    private readonly log: Logger,
  ) {}

  /** Whether host @id's endpoints are withdrawn here. */
  withdrawn(id: string): boolean {
    return this.withdrawnSet.has(id);
  }

  /**
   * Brings the lapse bookkeeping up to date with the store (call on every
   * change and reconnection). While the store is unreachable nothing lapses:
   * its view of the registrations is stale.
   */
  review(): void {
    if (!this.src.connected) return;
    const now = Date.now();
    const registered = new Map(this.src.registered().map((h) => [h.id, h]));
    for (const id of this.known().keys()) {
      if (id === this.src.hostId) continue;
      if (registered.has(id)) {
        this.seenAt.set(id, now);
        this.lapsedAt.delete(id);
        clearTimeout(this.timers.get(id));
        this.timers.delete(id);
        if (this.withdrawnSet.delete(id)) {
          this.log.info({ host: id }, 'host registered again: its endpoints are back');
          this.src.emit('host-returned', this.view(id));
          this.src.emit('changed');
        }
        continue;
      }
      if (this.lapsedAt.has(id)) continue;
      this.lapsedAt.set(id, now);
      this.log.info({ host: id, graceSeconds: this.graceSeconds }, 'host registration lapsed');
      const t = setTimeout(() => this.withdraw(id), this.graceSeconds * 1000);
      t.unref();
      this.timers.set(id, t);
    }
  }

  private withdraw(id: string): void {
    this.timers.delete(id);
    if (!this.lapsedAt.has(id) || this.withdrawnSet.has(id)) return;
    this.withdrawnSet.add(id);
    this.log.warn({ host: id, graceSeconds: this.graceSeconds }, 'host lapsed beyond the grace period: its endpoints are withdrawn here');
    this.src.emit('host-lapsed', this.view(id));
    this.src.emit('changed');
  }

  /** Every known host: members, registrations, hosts of endpoints; the registration's record first. */
  private known(): Map<string, HostRecord> {
    const out = new Map<string, HostRecord>();
    for (const h of this.src.members()) out.set(h.id, h);
    for (const h of this.src.registered()) out.set(h.id, h);
    for (const id of this.src.endpointHosts()) if (!out.has(id)) out.set(id, { id, name: '', underlay: '', since: '' });
    return out;
  }

  private view(id: string, rec?: HostRecord, counts?: Map<string, number>): MemberView {
    const h = rec ?? this.known().get(id) ?? { id, name: '', underlay: '', since: '' };
    const self = id === this.src.hostId;
    const registered = self || this.src.registered().some((r) => r.id === id);
    const lapsedAt = this.lapsedAt.get(id);
    const seen = registered ? Date.now() : this.seenAt.get(id);
    const endpoints = counts ? (counts.get(id) ?? 0) : this.src.endpointHosts().filter((x) => x === id).length;
    return {
      id, name: h.name, underlay: h.underlay, self, state: registered ? 'ready' : 'lapsed',
      lastSeen: seen === undefined ? null : new Date(seen).toISOString(),
      ...(!registered ? { lapsedFor: Math.round((Date.now() - (lapsedAt ?? this.started)) / 1000) } : {}),
      withdrawn: this.withdrawnSet.has(id), endpoints,
    };
  }

  /** Every known host, this one first, then by name and id. */
  list(): MemberView[] {
    const counts = new Map<string, number>();
    for (const id of this.src.endpointHosts()) counts.set(id, (counts.get(id) ?? 0) + 1);
    const known = this.known();
    if (!known.has(this.src.hostId)) known.set(this.src.hostId, { id: this.src.hostId, name: '', underlay: '', since: '' });
    return [...known.values()]
      .map((h) => this.view(h.id, h, counts))
      .sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
