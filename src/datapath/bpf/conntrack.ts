/**
 * The eBPF datapath's connection tables (berth_dp_ct, established flows, and
 * berth_dp_ct_new, flows that have not completed a handshake) as user space tends them:
 * its size and a resize across restarts (the flows move to the new table),
 * the periodic cleanup of expired pairs, and flushing the flows of publishes
 * that went or now lead elsewhere.
 */
import { rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { addon, type RawMap } from '../../native/addon.js';
import { ctKey, ctVal, CtFlag, type DpPub } from '../../bpf/abi.js';
import type { FrontEnd } from '../desired.js';
import { PROTO } from './compile.js';

/** where berth_ct_val's flags sit, found through the codec (36: after saddr, daddr, sport, dport) */
const CT_VAL_FLAGS = ctVal.encode({ saddr: Buffer.alloc(16), daddr: Buffer.alloc(16), sport: 0, dport: 0, flags: 0xffff, lastSeen: 0n, created: 0n, packets: 0n, bytes: 0n, pubId: 0, ack: 0 }).indexOf(Buffer.from([0xff, 0xff]));

/** connection table entries by default: two a flow, so 131,072 flows */
export const CT_MAX_DEFAULT = 262144;

/** As bpf/lib/dp_ct.h expires entries (closing: past the ends' TIME_WAIT, see CT_CLOSING_NS there). */
const CT_TIMEOUT_NS = { tcp: 6n * 3600n * 1_000_000_000n, closing: 65n * 1_000_000_000n, udp: 120n * 1_000_000_000n, icmp: 30n * 1_000_000_000n, unconfirmed: 30n * 1_000_000_000n };

function timeout(proto: number, flags: number): bigint {
  if (flags & CtFlag.New) return CT_TIMEOUT_NS.unconfirmed;
  if (proto === 6) return flags & CtFlag.Closing ? CT_TIMEOUT_NS.closing : CT_TIMEOUT_NS.tcp;
  return proto === 1 || proto === 58 ? CT_TIMEOUT_NS.icmp : CT_TIMEOUT_NS.udp;
}

export class ConnTable {
  /** the connection table an earlier berthd pinned with another size: its entries move to the new one */
  private migrating: RawMap | undefined;

  constructor(
    private readonly root: string,
    readonly ctMax: number,
    private readonly log: Logger,
  ) {}

  /**
   * A pinned connection table of another size cannot be reused: its pin is
   * moved aside (the running programs keep using it), the new programs get a
   * table of the new size, and migrate() copies the flows over. A crash in
   * between leaves the old table pinned as berth_dp_ct_resizing, and the
   * next start migrates from it. Runs before the programs load.
   */
  async setAsideResized(): Promise<void> {
    const pin = join(this.root, 'berth_dp_ct');
    if (existsSync(`${pin}_resizing`)) {
      // An earlier berthd stopped half-way through a migration: finish it.
      this.migrating = await addon().openPinnedMap(`${pin}_resizing`);
      if (existsSync(pin) && (await addon().openPinnedMap(pin)).info().maxEntries !== this.ctMax) await rm(pin);
      return;
    }
    if (!existsSync(pin)) return;
    const old = await addon().openPinnedMap(pin);
    if (old.info().maxEntries === this.ctMax) {
      old.close();
      return;
    }
    // bpffs cannot rename a pin: the old table is pinned again under another name, then unpinned from this one.
    await rm(`${pin}_resizing`, { force: true });
    await old.pin(`${pin}_resizing`);
    await rm(pin);
    this.migrating = old;
    this.log.info({ from: old.info().maxEntries, to: this.ctMax }, 'connection table size changed: migrating its entries');
  }

  /** Copies the set-aside table's live entries into @ct (the most recently used first, when it is smaller). */
  async migrate(ct: RawMap, final: boolean): Promise<number> {
    const old = this.migrating;
    if (!old) return 0;
    const { keys, values, count } = await old.entries();
    const have = new Set<string>();
    const cur = await ct.entries();
    for (let i = 0; i < cur.count; i++) have.add(cur.keys.subarray(i * ctKey.size, (i + 1) * ctKey.size).toString('hex'));
    const rows: { k: Buffer; v: Buffer; seen: bigint }[] = [];
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * ctKey.size, (i + 1) * ctKey.size);
      if (have.has(k.toString('hex'))) continue;
      const v = values.subarray(i * ctVal.size, (i + 1) * ctVal.size);
      rows.push({ k, v, seen: ctVal.decode(v).lastSeen });
    }
    rows.sort((a, b) => (b.seen > a.seen ? 1 : b.seen < a.seen ? -1 : 0));
    const room = Math.max(0, this.ctMax - cur.count);
    const take = rows.slice(0, room);
    if (take.length) await ct.updateBatch(Buffer.concat(take.map((r) => r.k)), Buffer.concat(take.map((r) => r.v)));
    if (final) {
      old.close();
      this.migrating = undefined;
      await rm(join(this.root, 'berth_dp_ct_resizing'), { force: true });
      this.log.info({ moved: take.length, dropped: rows.length - take.length }, 'connection table migrated');
    }
    return take.length;
  }

  /**
   * Removes the connection-table entries of published flows whose publish
   * is gone or now leads elsewhere, so that they follow the new table
   * (Docker's UDP "black hole" after a container restart is this, not done).
   * @fronts: the front ends the intent says changed (undefined: any, the
   * first apply of this process); a flow whose translation @pubs still make
   * stays.
   */
  async flushPublished(tables: RawMap[], pubs: DpPub[], fronts: FrontEnd[] | undefined): Promise<number> {
    let n = 0;
    for (const ct of tables) n += await this.flushPublishedIn(ct, pubs, fronts);
    return n;
  }

  private async flushPublishedIn(ct: RawMap, pubs: DpPub[], fronts: FrontEnd[] | undefined): Promise<number> {
    const { keys, values, count } = await ct.entries();
    if (!count) return 0;
    // Indexed by protocol and port: a lookup per flow, not a walk of every publish (10,000 single ports, many flows).
    const frontPorts = fronts ? portSet(fronts.map((f) => ({ proto: PROTO[f.proto], start: f.hostPort, end: f.hostPort + Math.max(1, f.count) - 1 }))) : undefined;
    const byPort = new Map<number, DpPub[]>();
    for (const p of pubs) {
      for (let port = p.start; port <= p.end; port++) {
        const k = (p.proto << 16) | port;
        const at = byPort.get(k);
        if (at) at.push(p);
        else byPort.set(k, [p]);
      }
    }
    const dead: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      // most flows are not a publish's forward entry: told by the flags alone, before anything is decoded
      const flags = values.readUInt16LE(i * ctVal.size + CT_VAL_FLAGS);
      if (!(flags & CtFlag.Publish) || flags & CtFlag.Reply) continue;
      const kb = keys.subarray(i * ctKey.size, (i + 1) * ctKey.size);
      const v = ctVal.decode(values, i * ctVal.size);
      const k = ctKey.decode(kb);
      const pk = (k.proto << 16) | k.dport;
      if (frontPorts && !frontPorts.has(pk)) continue;
      const ok = byPort.get(pk)?.some((p) => p.target.equals(v.daddr) && p.cport + (k.dport - p.start) === v.dport);
      if (ok) continue;
      dead.push(Buffer.from(kb));
      dead.push(ctKey.encode({ saddr: v.daddr, daddr: v.saddr, sport: v.dport, dport: v.sport, proto: k.proto }));
    }
    if (dead.length) await ct.deleteBatch(Buffer.concat(dead));
    if (dead.length) this.log.info({ entries: dead.length }, 'flows of removed or changed publishes flushed');
    return dead.length;
  }

  /** Deletes connection-table pairs both of whose entries expired, in each table. */
  async collect(tables: RawMap[]): Promise<number> {
    let n = 0;
    for (const ct of tables) n += await this.collectIn(ct);
    return n;
  }

  private async collectIn(ct: RawMap): Promise<number> {
    const now = process.hrtime.bigint();
    const { keys, values, count } = await ct.entries();
    const live = new Set<string>();
    const expired: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const kb = keys.subarray(i * ctKey.size, (i + 1) * ctKey.size);
      const proto = kb[36]!;
      const v = ctVal.decode(values, i * ctVal.size);
      if (now - v.lastSeen > timeout(proto, v.flags)) expired.push(Buffer.from(kb));
      else live.add(ctKey.encode({ saddr: v.daddr, daddr: v.saddr, sport: v.dport, dport: v.sport, proto }).toString('hex'));
    }
    // An expired entry whose partner still lives stays: the partner's packets refresh the pair.
    const gone = expired.filter((k) => !live.has(k.toString('hex')));
    if (gone.length) await ct.deleteBatch(Buffer.concat(gone));
    return gone.length;
  }
}

/** (proto << 16 | port) of every port of @ranges. */
function portSet(ranges: { proto: number; start: number; end: number }[]): Set<number> {
  const out = new Set<number>();
  for (const r of ranges) for (let port = r.start; port <= r.end; port++) out.add((r.proto << 16) | port);
  return out;
}
