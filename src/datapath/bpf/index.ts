/**
 * The eBPF datapath: bpf/tc_container.c on every sandbox's host-side veth
 * (tc ingress), bpf/tc_uplink.c on the uplink (tc ingress) and bpf/tc_host.c
 * on lo (tc egress), attached with tcx, sharing one set of maps. apply()
 * compiles the desired state into map contents (compile.ts) and writes only
 * the entries that differ; published ports are rewritten into the idle half
 * of a two-generation table and switched in with one word.
 *
 * Maps and links are pinned under <bpffs>/berth, so the datapath keeps
 * forwarding while berthd is stopped, killed or upgraded. A new berthd loads
 * its programs against the pinned maps (their state carries over), attaches
 * each next to the pinned one, then detaches the old: there is no moment
 * without a program. teardown() removes every attachment and pin.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BpfObject, type BpfProgram } from '../../bpf/object.js';
import { BpfLink } from '../../bpf/link.js';
import { BPFFS_ROOT } from '../../bpf/bpffs.js';
import { addon, type NlLink, type RawMap } from '../../native/addon.js';
import { nl } from '../../netlink/index.js';
import { run, tryRun } from '../../exec.js';
import { bpfObjectPath } from '../../paths.js';
import { counter, ctKey, ctVal, CtFlag, dpNet, dpPub, dropReasons, DpStat, PUB_GEN_SHIFT, PUB_MAX, sumCounters, type DpPub } from '../../bpf/abi.js';
import { u32 as u32Codec } from '../../bpf/codec.js';
import type { Datapath, DatapathStatus, DesiredDatapath, DpEventBatch, DpExplainQuery, DpExplainResult } from '../datapath.js';
import { EventWatch } from './events.js';
import { buildPacket, explainCtx, readRun, type ExplainRun } from './explain.js';
import { ensureSysctls, sysctlsDrifted, type Sysctl } from '../iptables/sysctl.js';
import { compile, lpmKey, type CompiledMaps, type Entries } from './compile.js';
import { BerthError } from '../../errors.js';

const PROGRAMS = {
  container: { object: 'tc_container', program: 'berth_from_container', direction: 'ingress' },
  uplink: { object: 'tc_uplink', program: 'berth_from_uplink', direction: 'ingress' },
  host: { object: 'tc_host', program: 'berth_from_host', direction: 'egress' },
} as const;
export type Hook = keyof typeof PROGRAMS;

/** Maps user space writes, by pinned name; batch: the map type takes batched updates. */
const MAPS = {
  nets: { name: 'berth_dp_nets', batch: true },
  epIp: { name: 'berth_dp_ep_ip', batch: true },
  epIf: { name: 'berth_dp_ep_if', batch: true },
  links: { name: 'berth_dp_links', batch: true },
  subnets: { name: 'berth_dp_subnets', batch: false },
  egress: { name: 'berth_dp_egress', batch: false },
  ifaddr: { name: 'berth_dp_ifaddr', batch: true },
} as const;

/** The cls_bpf filter carrying the sandbox program on a veth: berth's own handle and priority. */
const SANDBOX_FILTER = { handle: 0xbe7e, priority: 0xbe7 };

/** connection table entries by default: two a flow, so 131,072 flows */
export const CT_MAX_DEFAULT = 262144;

const CT_TIMEOUT_NS = { tcp: 6n * 3600n * 1_000_000_000n, closing: 10n * 1_000_000_000n, udp: 120n * 1_000_000_000n, icmp: 30n * 1_000_000_000n };

interface Loaded {
  objects: BpfObject[];
  programs: Record<Hook, BpfProgram>;
  maps: Map<string, RawMap>;
}

interface LastApply {
  at: string;
  ms: number;
  warnings: string[];
  changed: number;
  /** ms per phase: netlink, compile, maps, sysctls, attach */
  phase: Record<string, number>;
}

export class BpfDatapath implements Datapath {
  readonly kind = 'bpf' as const;
  private loaded: Loaded | undefined;
  private last: LastApply | undefined;
  private sysctls: Sysctl[] = [];
  /** the sysctls last ensured (drifted() checks them; a changed set is ensured again) */
  private sysctlsSet = '';
  /** map name -> the entries last written: what the map holds, since only berthd writes it */
  private readonly mirror = new Map<string, Entries>();
  /** the publish table and allow-lists last written */
  private publishedKey = '';
  private cfgWritten: Buffer | undefined;
  /** bridge ifindex -> network name, from the last apply */
  private readonly netNames = new Map<number, string>();
  /** pin path -> ifindex of every attachment this process made or adopted */
  private attached = new Map<string, number>();
  /** sandbox veth -> ifindex of the cls_bpf filters this process attached */
  private readonly filters = new Map<string, number>();
  private gc: NodeJS.Timeout | undefined;
  private watch: EventWatch | undefined;

  /** the connection table an earlier berthd pinned with another size: its entries move to the new one */
  private migrating: RawMap | undefined;

  private constructor(
    private readonly log: Logger,
    readonly root: string,
    readonly ctMax: number,
  ) {}

  /**
   * @bpffs: a mounted bpffs (the host's /sys/fs/bpf by default; mounted when it is not).
   * @ctMax: connection table entries (two a flow); a pinned table of another size is migrated.
   */
  static async create(opts: { log: Logger; bpffs?: string; ctMax?: number }): Promise<BpfDatapath> {
    const bpffs = opts.bpffs ?? BPFFS_ROOT;
    const ctMax = opts.ctMax ?? CT_MAX_DEFAULT;
    if (!Number.isInteger(ctMax) || ctMax < 1024 || ctMax > 1 << 26) {
      throw new BerthError('bad-request', `connection table size ${ctMax} is out of range (1024 to ${1 << 26})`);
    }
    await ensureBpffs(bpffs);
    return new BpfDatapath(opts.log, join(bpffs, 'berth'), ctMax);
  }

  private get linkDir(): string {
    return join(this.root, 'links');
  }

  private async load(): Promise<Loaded> {
    if (this.loaded) return this.loaded;
    await mkdir(this.linkDir, { recursive: true });
    await this.setAsideResizedCt();
    const objects: BpfObject[] = [];
    try {
      // The first object pins the maps (or reuses an earlier berthd's pins); the others reuse them.
      const programs = {} as Record<Hook, BpfProgram>;
      for (const [hook, p] of Object.entries(PROGRAMS) as [Hook, (typeof PROGRAMS)[Hook]][]) {
        const o = await BpfObject.load(bpfObjectPath(p.object), { pinRoot: this.root, maxEntries: { berth_dp_ct: this.ctMax } });
        objects.push(o);
        programs[hook] = o.program(p.program);
      }
      const maps = new Map<string, RawMap>();
      for (const m of objects[0]!.maps()) if (!m.internal) maps.set(m.name, objects[0]!.rawMap(m.name));
      const kdrops = await this.loadKernelDrops();
      if (kdrops) {
        objects.push(kdrops);
        maps.set('berth_dp_kdrops', kdrops.rawMap('berth_dp_kdrops'));
      }
      this.loaded = { objects, programs, maps };
    } catch (e) {
      for (const o of objects) o.close();
      throw e;
    }
    this.gc = setInterval(() => void this.collect().catch((e: unknown) => this.log.warn({ err: e }, 'connection table cleanup failed')), 30_000);
    this.gc.unref();
    return this.loaded;
  }

  /**
   * bpf/kdrops.c on the kfree_skb tracepoint: the kernel's own drops of
   * berth's traffic, by the kernel's reason. Optional: without it (no BTF
   * for tracing, a locked-down kernel) the datapath works, and says so.
   */
  private async loadKernelDrops(): Promise<BpfObject | undefined> {
    const pin = join(this.linkDir, 'kdrops');
    try {
      const inum = (await stat('/proc/self/ns/net')).ino;
      const o = await BpfObject.load(bpfObjectPath('kdrops'), { pinRoot: this.root, maxEntries: { berth_dp_ct: this.ctMax }, consts: { cfg_netns_inum: inum } });
      const old = existsSync(pin) ? await BpfLink.fromPin(pin).catch(() => undefined) : undefined;
      const link = await o.program('berth_kfree_skb').attachTracing();
      try {
        if (old) {
          old.close();
          await rm(pin, { force: true });
        }
        await link.pin(pin);
      } finally {
        link.close();
      }
      return o;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'the kernel\'s drop reasons are not watched (kfree_skb tracing unavailable)');
      return undefined;
    }
  }

  /**
   * Packets and bytes per network (sent by its sandboxes, delivered into it)
   * and per published port (both ways), from berth_dp_traffic, named by the
   * last applied state.
   */
  async traffic(): Promise<{ networks: Record<string, { outPackets: number; outBytes: number; inPackets: number; inBytes: number }>; publishes: Record<string, { packets: number; bytes: number }> }> {
    const out = { networks: {} as Record<string, { outPackets: number; outBytes: number; inPackets: number; inBytes: number }>, publishes: {} as Record<string, { packets: number; bytes: number }> };
    const m = this.loaded?.maps.get('berth_dp_traffic');
    if (!m) return out;
    const info = m.info();
    const { keys, values, count } = await m.entries();
    const bridgeName = new Map<number, string>();
    for (const [k, v] of this.mirror.get('berth_dp_nets') ?? []) bridgeName.set(Buffer.from(k, 'hex').readUInt32LE(0), this.netNames.get(dpNet.decode(v).bridge) ?? String(dpNet.decode(v).bridge));
    const PROTO_NAME: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
    for (let i = 0; i < count; i++) {
      const kind = keys.readUInt32LE(i * 8 + 4);
      const id = keys.readUInt32LE(i * 8);
      const s = sumCounters(Array.from({ length: info.ncpus }, (_, c) => counter.decode(values, i * info.valueBytes + c * 16)));
      if (kind === 3) {
        out.publishes[`${PROTO_NAME[id >>> 16] ?? id >>> 16}/${id & 0xffff}`] = { packets: Number(s.packets), bytes: Number(s.bytes) };
        continue;
      }
      const name = bridgeName.get(id);
      if (!name) continue;
      const n = (out.networks[name] ??= { outPackets: 0, outBytes: 0, inPackets: 0, inBytes: 0 });
      if (kind === 1) {
        n.outPackets += Number(s.packets);
        n.outBytes += Number(s.bytes);
      } else if (kind === 2) {
        n.inPackets += Number(s.packets);
        n.inBytes += Number(s.bytes);
      }
    }
    return out;
  }

  /** The kernel's drops of berth's traffic by the kernel's reason name (SKB_DROP_REASON_*), non-zero ones. */
  async kernelDrops(): Promise<Record<string, { packets: number; bytes: number }> | null> {
    const m = this.loaded?.maps.get('berth_dp_kdrops');
    if (!m) return null;
    const names = new Map(Object.entries(addon().kernelEnum('skb_drop_reason')).map(([k, v]) => [v, k.replace(/^SKB_DROP_REASON_/, '').toLowerCase()]));
    const info = m.info();
    const { keys, values, count } = await m.entries();
    const out: Record<string, { packets: number; bytes: number }> = {};
    for (let i = 0; i < count; i++) {
      const reason = keys.readUInt32LE(i * 4);
      const per = Array.from({ length: info.ncpus }, (_, c) => counter.decode(values, i * info.valueBytes + c * 16));
      const s = sumCounters(per);
      if (s.packets > 0n) out[names.get(reason) ?? String(reason)] = { packets: Number(s.packets), bytes: Number(s.bytes) };
    }
    return out;
  }

  /**
   * A pinned connection table of another size cannot be reused: its pin is
   * moved aside (the running programs keep using it), the new programs get a
   * table of the new size, and migrateCt() copies the flows over. A crash in
   * between leaves the old table pinned as berth_dp_ct_resizing, and the
   * next start migrates from it.
   */
  private async setAsideResizedCt(): Promise<void> {
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

  /** Copies the set-aside table's live entries into the new one (the most recently used first, when it is smaller). */
  private async migrateCt(final: boolean): Promise<number> {
    const old = this.migrating;
    if (!old) return 0;
    const ct = this.map('berth_dp_ct');
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

  private map(name: string): RawMap {
    const m = this.loaded?.maps.get(name);
    if (!m) throw new Error(`the datapath has no map ${name}`);
    return m;
  }

  async apply(desired: DesiredDatapath): Promise<void> {
    const t0 = performance.now();
    const l = await this.load();
    const phase: Record<string, number> = {};
    let tp = performance.now();
    const mark = (name: string) => {
      const now = performance.now();
      phase[name] = Math.round((now - tp) * 100) / 100;
      tp = now;
    };
    const [links, addrs] = await Promise.all([nl.linkList({}), nl.addrList({})]);
    mark('netlink');
    const c = compile(desired, links, addrs);
    mark('compile');
    for (const n of desired.networks) {
      const br = n.bridge && links.find((l) => l.name === n.bridge);
      if (br) this.netNames.set(br.ifindex, n.name);
    }
    let changed = 0;
    // Order: what things point at first (networks, endpoints), then what points at them.
    for (const [key, m] of Object.entries(MAPS) as [keyof typeof MAPS, (typeof MAPS)[keyof typeof MAPS]][]) {
      // What this process wrote last is what the map holds (only berthd writes these); read the kernel once.
      changed += await syncMap(this.map(m.name), c[key], m.batch, this.mirror.get(m.name));
      this.mirror.set(m.name, c[key]);
    }
    const pubKey = JSON.stringify([c.pubs.map((p) => dpPub.encode(p).toString('hex')), c.pubAllow]);
    if (pubKey !== this.publishedKey) {
      changed += await this.syncPublishes(c);
      this.publishedKey = pubKey;
    }
    if (!this.cfgWritten?.equals(c.cfg)) {
      await this.map('berth_dp_cfg').update(u32Codec.encode(0), await this.cfgWithEvents(c.cfg));
      this.cfgWritten = c.cfg;
    }
    mark('maps');
    // Forwarding before the programs redirect anything: the FIB helper refuses without it.
    this.sysctls = [
      { key: 'net.ipv4.ip_forward', value: '1', required: true },
      // Answers of the host's own connections to published ports are put back into lo with 127.0.0.1 or
      // a local address as the source; the kernel then routes them afresh, which these two allow on lo only.
      { key: 'net.ipv4.conf.lo.route_localnet', value: '1', required: true },
      { key: 'net.ipv4.conf.lo.accept_local', value: '1', required: true },
      ...(desired.networks.some((n) => n.subnet6) ? [{ key: 'net.ipv6.conf.all.forwarding', value: '1', required: true }] : []),
    ];
    const sysKey = JSON.stringify(this.sysctls);
    const sys = sysKey === this.sysctlsSet ? { changed: [] as string[], missing: [] as string[] } : await ensureSysctls(this.sysctls);
    this.sysctlsSet = sysKey;
    mark('sysctls');
    // A resized connection table: flows copied before the programs switch to it, and what they added meanwhile after.
    await this.migrateCt(false);
    changed += await this.syncAttachments(l, c);
    await this.migrateCt(true);
    mark('attach');
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    this.last = { at: new Date().toISOString(), ms, warnings: c.warnings, changed, phase };
    const level = c.warnings.length ? 'warn' : sys.changed.length ? 'info' : 'debug';
    this.log[level]({ ms, changed, ...(sys.changed.length ? { sysctls: sys.changed } : {}), ...(c.warnings.length ? { warnings: c.warnings } : {}) }, 'bpf datapath applied');
  }

  /** Keeps monitor's event switches (set by `berth monitor`) across applies. */
  private async cfgWithEvents(cfg: Buffer): Promise<Buffer> {
    const cur = await this.map('berth_dp_cfg').lookup(u32Codec.encode(0));
    if (cur) cur.copy(cfg, 4, 4, 12);
    return cfg;
  }

  /** Writes the publish table's idle generation, then switches to it; allow-lists follow the generation. */
  private async syncPublishes(c: CompiledMaps): Promise<number> {
    const sel = this.map('berth_dp_pubsel');
    const table = this.map('berth_dp_pub');
    const allow = this.map('berth_dp_allow');
    const selVal = (await sel.lookup(u32Codec.encode(0)))!.readUInt32LE(0);
    const gen = selVal >>> PUB_GEN_SHIFT;
    const count = selVal & 0x7fffffff;
    const next = gen ^ 1;
    const idOf = (g: number, i: number) => ((g << 30) | (i + 1)) >>> 0;
    const encode = (g: number) => c.pubs.map((p, i) => dpPub.encode({ ...p, id: idOf(g, i) }));
    // Unchanged: nothing to write (a live table is never rewritten in place).
    if (count === c.pubs.length) {
      const live = encode(gen);
      const keys = Buffer.concat(live.map((_, i) => u32Codec.encode(gen * PUB_MAX + i)));
      let same = true;
      for (let i = 0; i < live.length && same; i++) {
        const v = await table.lookup(keys.subarray(i * 4, i * 4 + 4));
        same = !!v && v.equals(live[i]!);
      }
      if (same && (await this.allowMatches(allow, c, gen, idOf))) return 0;
    }
    const rows = encode(next);
    if (rows.length) {
      await table.updateBatch(Buffer.concat(rows.map((_, i) => u32Codec.encode(next * PUB_MAX + i))), Buffer.concat(rows));
    }
    const want = new Map<string, Buffer>();
    for (const a of c.pubAllow) want.set(lpmKey(a.cidr, idOf(next, a.index)).toString('hex'), u32Codec.encode(1));
    for (const [k, v] of want) await allow.update(Buffer.from(k, 'hex'), v);
    await sel.update(u32Codec.encode(0), u32Codec.encode(((next << PUB_GEN_SHIFT) | rows.length) >>> 0));
    // Now that no packet reads the old generation: its allow entries go, and flows of publishes that went.
    const { keys, count: n } = await allow.entries();
    for (let i = 0; i < n; i++) {
      const k = keys.subarray(i * 24, i * 24 + 24);
      if (!want.has(k.toString('hex'))) await allow.delete(k);
    }
    await this.flushPublishedFlows(c.pubs);
    return rows.length + 1;
  }

  private async allowMatches(allow: RawMap, c: CompiledMaps, gen: number, idOf: (g: number, i: number) => number): Promise<boolean> {
    const { keys, count } = await allow.entries();
    if (count !== c.pubAllow.length) return false;
    const have = new Set<string>();
    for (let i = 0; i < count; i++) have.add(keys.subarray(i * 24, i * 24 + 24).toString('hex'));
    return c.pubAllow.every((a) => have.has(lpmKey(a.cidr, idOf(gen, a.index)).toString('hex')));
  }

  /**
   * Removes the connection-table entries of published flows whose publish
   * is gone or now leads elsewhere, so that they follow the new table
   * (Docker's UDP "black hole" after a container restart is this, not done).
   */
  private async flushPublishedFlows(pubs: DpPub[]): Promise<number> {
    const ct = this.map('berth_dp_ct');
    const { keys, values, count } = await ct.entries();
    const dead: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const kb = keys.subarray(i * ctKey.size, (i + 1) * ctKey.size);
      const v = ctVal.decode(values, i * ctVal.size);
      if (!(v.flags & CtFlag.Publish) || v.flags & CtFlag.Reply) continue;
      const k = ctKey.decode(kb);
      const ok = pubs.some((p) => p.proto === k.proto && p.start <= k.dport && k.dport <= p.end && p.target.equals(v.daddr) && p.cport + (k.dport - p.start) === v.dport);
      if (ok) continue;
      dead.push(Buffer.from(kb));
      dead.push(ctKey.encode({ saddr: v.daddr, daddr: v.saddr, sport: v.dport, dport: v.sport, proto: k.proto }));
    }
    for (const k of dead) await ct.delete(k);
    if (dead.length) this.log.info({ entries: dead.length }, 'flows of removed or changed publishes flushed');
    return dead.length;
  }

  /** Deletes connection-table pairs both of whose entries expired. */
  async collect(): Promise<number> {
    if (!this.loaded) return 0;
    const ct = this.map('berth_dp_ct');
    const now = process.hrtime.bigint();
    const { keys, values, count } = await ct.entries();
    const live = new Set<string>();
    const expired: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const kb = keys.subarray(i * ctKey.size, (i + 1) * ctKey.size);
      const proto = kb[36]!;
      const v = ctVal.decode(values, i * ctVal.size);
      const t = proto === 6 ? (v.flags & CtFlag.Closing ? CT_TIMEOUT_NS.closing : CT_TIMEOUT_NS.tcp) : proto === 1 || proto === 58 ? CT_TIMEOUT_NS.icmp : CT_TIMEOUT_NS.udp;
      if (now - v.lastSeen > t) expired.push(Buffer.from(kb));
      else live.add(ctKey.encode({ saddr: v.daddr, daddr: v.saddr, sport: v.dport, dport: v.sport, proto }).toString('hex'));
    }
    // An expired entry whose partner still lives stays: the partner's packets refresh the pair.
    const gone = expired.filter((k) => !live.has(k.toString('hex')));
    for (const k of gone) await ct.delete(k);
    return gone.length;
  }

  private pinPath(hook: Hook, ifname: string): string {
    return join(this.linkDir, `${hook}-${ifname}`);
  }

  /** Attaches each program where it belongs, replaces attachments of older programs, removes stale ones. */
  private async syncAttachments(l: Loaded, c: CompiledMaps): Promise<number> {
    let changed = await this.syncSandboxFilters(l, c);
    const want = new Map<string, { hook: Hook; ifindex: number }>();
    for (const u of c.uplinks) want.set(this.pinPath('uplink', u.ifname), { hook: 'uplink', ifindex: u.ifindex });
    want.set(this.pinPath('host', 'lo'), { hook: 'host', ifindex: 1 });
    const pinned = new Set((await readdir(this.linkDir)).map((f) => join(this.linkDir, f)));
    for (const [path, w] of want) {
      const prog = l.programs[w.hook];
      if (this.attached.get(path) === w.ifindex && pinned.has(path)) continue;
      const old = pinned.has(path) ? await BpfLink.fromPin(path).catch(() => undefined) : undefined;
      const oi = old?.info;
      if (old && oi && !oi.detached && oi.ifindex === w.ifindex && oi.progId === prog.info.id) {
        old.close();
        this.attached.set(path, w.ifindex);
        continue;
      }
      // The new program goes in first; the old one (an earlier berthd's) leaves after: no gap.
      const link = await prog.attachTc({ ifindex: w.ifindex, direction: PROGRAMS[w.hook].direction, mode: 'tcx' });
      try {
        if (old) {
          await old.detach().catch(() => undefined);
          old.close();
          await rm(path, { force: true });
        }
        await link.pin(path);
      } finally {
        link.close();
      }
      this.attached.set(path, w.ifindex);
      changed++;
    }
    for (const path of pinned) {
      if (want.has(path) || path === join(this.linkDir, 'kdrops')) continue;
      await detachPin(path);
      this.attached.delete(path);
      changed++;
    }
    return changed;
  }

  /**
   * Sandbox veths carry the program as a cls_bpf filter at berth's own handle
   * and priority on their clsact qdisc, not as a tcx link: attaching a tcx
   * link waits for an RCU grace period (about 11 ms here, on every sandbox
   * attach), a filter does not. A filter needs no pin to outlive berthd, and
   * a new berthd swaps its program in atomically (replace). The first apply
   * of a process (re)attaches every veth; later ones only new veths.
   */
  private async syncSandboxFilters(l: Loaded, c: CompiledMaps): Promise<number> {
    const prog = l.programs.container;
    let changed = 0;
    const want = new Map(c.attach.map((a) => [a.ifname, a.ifindex]));
    for (const [ifname, ifindex] of want) {
      if (this.filters.get(ifname) === ifindex) continue;
      (await prog.attachTc({ ifindex, direction: 'ingress', mode: 'clsact', ...SANDBOX_FILTER, replace: true })).close();
      this.filters.set(ifname, ifindex);
      changed++;
    }
    for (const [ifname, ifindex] of this.filters) {
      if (want.has(ifname)) continue;
      // Usually the veth went with its sandbox, and the filter with it.
      await addon().tcFilter({ ifindex, direction: 'ingress', ...SANDBOX_FILTER, remove: true }).catch(() => undefined);
      this.filters.delete(ifname);
      changed++;
    }
    return changed;
  }

  async drifted(): Promise<boolean> {
    if (!this.loaded) return false;
    // A forced re-apply after drift reads every map back from the kernel.
    const forget = () => {
      this.mirror.clear();
      this.publishedKey = '';
      this.cfgWritten = undefined;
      this.sysctlsSet = '';
    };
    for (const path of this.attached.keys()) {
      if (!existsSync(path)) {
        this.log.warn({ pin: path }, 'a datapath attachment was removed outside berth');
        forget();
        return true;
      }
    }
    if (await sysctlsDrifted(this.sysctls, this.log)) {
      forget();
      return true;
    }
    return false;
  }

  async teardown(): Promise<void> {
    await this.watch?.stop();
    this.watch = undefined;
    if (this.gc) clearInterval(this.gc);
    this.gc = undefined;
    if (existsSync(this.linkDir)) for (const f of await readdir(this.linkDir)) await detachPin(join(this.linkDir, f));
    // Sandbox filters: berth's handle and priority on any veth (another process's berthd may have made them).
    for (const v of (await nl.linkList({})).filter((x) => x.kind === 'veth')) {
      await addon().tcFilter({ ifindex: v.ifindex, direction: 'ingress', ...SANDBOX_FILTER, remove: true }).catch(() => undefined);
    }
    this.filters.clear();
    for (const o of this.loaded?.objects ?? []) o.close();
    this.loaded = undefined;
    this.attached.clear();
    this.mirror.clear();
    this.publishedKey = '';
    this.cfgWritten = undefined;
    this.sysctlsSet = '';
    await rm(this.root, { recursive: true, force: true });
    this.log.info({ root: this.root }, 'bpf datapath removed');
  }

  /** Runs the loaded program of @hook on @packet arriving on @ifindex, as `berth explain` (changes nothing). */
  async explainRun(hook: Hook, ifindex: number, packet: Buffer): Promise<ExplainRun> {
    const l = await this.load();
    const r = await l.programs[hook].testRun(packet, { ctx: explainCtx(ifindex) });
    return readRun(packet, r.retval, r.ctx, r.data);
  }

  async explain(q: DpExplainQuery): Promise<DpExplainResult> {
    await this.load();
    const links = await nl.linkList({});
    const byName = new Map(links.map((l) => [l.name, l]));
    let hook: Hook;
    let dev: NlLink | undefined;
    if (q.from === 'sandbox') {
      hook = 'container';
      dev = q.hostIf ? byName.get(q.hostIf) : undefined;
      if (!dev) throw new BerthError('not-found', `the sandbox's interface ${q.hostIf ?? '(none)'} does not exist`);
    } else if (q.from === 'outside') {
      hook = 'uplink';
      const up = [...this.attached.entries()].find(([p]) => p.startsWith(this.pinPath('uplink', '')));
      dev = up && links.find((l) => l.ifindex === up[1]);
      if (!dev) throw new BerthError('unavailable', 'no uplink is attached: nothing reaches the host from outside');
    } else {
      hook = 'host';
      dev = links.find((l) => l.ifindex === 1);
    }
    const packet = buildPacket({
      srcMac: q.srcMac ?? '02:00:00:00:00:01', dstMac: q.dstMac ?? (q.from === 'outside' ? dev!.mac : '00:00:00:00:00:00'),
      src: q.src, dst: q.dst, proto: q.proto, sport: q.sport, dport: q.dport,
    });
    const r = await this.explainRun(hook, dev!.ifindex, packet);
    const via = r.ifindex ? links.find((l) => l.ifindex === r.ifindex)?.name : undefined;
    const { ifindex: _i, ...rest } = r;
    return { ...rest, ...(via ? { via } : {}) };
  }

  async events(since: number): Promise<DpEventBatch> {
    await this.load();
    this.watch ??= new EventWatch(this.map('berth_dp_events'), this.map('berth_dp_cfg'), async () => (await readStats(this.map('berth_dp_stats'))).EventsLost ?? 0, this.log);
    return this.watch.poll(since);
  }

  /** Stops background work; programs, maps and pins stay (berthd exiting). */
  close(): void {
    if (this.gc) clearInterval(this.gc);
    this.gc = undefined;
  }

  /** Drop counters by reason, summed over CPUs. */
  async drops(): Promise<Record<string, { packets: number; bytes: number }>> {
    return readDrops(this.map('berth_dp_drops'));
  }

  async status(): Promise<DatapathStatus> {
    if (!this.loaded) {
      return { kind: 'bpf', detail: { root: this.root, loaded: false, ...(existsSync(this.root) ? { drops: await readDrops(await openPinned(this.root, 'berth_dp_drops')) } : {}) } };
    }
    const sizes: Record<string, { entries: number; max: number }> = {};
    for (const name of ['berth_dp_nets', 'berth_dp_ep_ip', 'berth_dp_links', 'berth_dp_ct', 'berth_dp_allow', 'berth_dp_subnets']) {
      const m = this.map(name);
      sizes[name] = { entries: (await m.entries()).count, max: m.info().maxEntries };
    }
    const sel = (await this.map('berth_dp_pubsel').lookup(u32Codec.encode(0)))!.readUInt32LE(0);
    sizes.berth_dp_pub = { entries: sel & 0x7fffffff, max: PUB_MAX };
    const stats = await readStats(this.map('berth_dp_stats'));
    return {
      kind: 'bpf',
      detail: {
        root: this.root,
        programs: Object.fromEntries(Object.entries(this.loaded.programs).map(([k, p]) => [k, p.info.id])),
        attachments: this.attached.size + this.filters.size,
        maps: sizes,
        ctFill: sizes.berth_dp_ct!.entries / sizes.berth_dp_ct!.max,
        drops: await this.drops(),
        kernelDrops: await this.kernelDrops(),
        traffic: await this.traffic(),
        stats,
        ...(this.last ? { lastApply: this.last.at, lastApplyMs: this.last.ms, lastApplyPhases: this.last.phase, warnings: this.last.warnings } : { lastApply: null }),
      },
    };
  }
}

async function openPinned(root: string, name: string): Promise<RawMap> {
  return addon().openPinnedMap(join(root, name));
}

/** Per-reason drop counters of a berth_dp_drops map, non-zero ones only. */
export async function readDrops(m: RawMap): Promise<Record<string, { packets: number; bytes: number }>> {
  const out: Record<string, { packets: number; bytes: number }> = {};
  const info = m.info();
  for (const [reason, d] of Object.entries(dropReasons)) {
    const v = await m.lookup(u32Codec.encode(Number(reason)));
    if (!v) continue;
    const per = Array.from({ length: info.ncpus }, (_, i) => counter.decode(v, i * 16));
    const s = sumCounters(per);
    if (s.packets > 0n) out[d.name] = { packets: Number(s.packets), bytes: Number(s.bytes) };
  }
  return out;
}

async function readStats(m: RawMap): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, slot] of Object.entries(DpStat)) {
    const v = await m.lookup(u32Codec.encode(slot));
    if (!v) continue;
    let sum = 0n;
    for (let i = 0; i + 8 <= v.length; i += 8) sum += v.readBigUInt64LE(i);
    out[name] = Number(sum);
  }
  return out;
}

async function detachPin(path: string): Promise<void> {
  const old = await BpfLink.fromPin(path).catch(() => undefined);
  if (old) {
    await old.detach().catch(() => undefined);
    old.close();
  }
  await rm(path, { force: true });
}

/**
 * Makes the kernel's map hold exactly @want (hex key -> value): deletes what
 * is extra, writes what differs. @known: what the map holds, when the caller
 * knows (saves reading it back).
 */
export async function syncMap(m: RawMap, want: Entries, batch: boolean, known?: Entries): Promise<number> {
  const info = m.info();
  const del: Buffer[] = [];
  const have = new Map<string, Buffer>();
  if (known) {
    for (const [hex, v] of known) {
      if (!want.has(hex)) del.push(Buffer.from(hex, 'hex'));
      else have.set(hex, v);
    }
  } else {
    const { keys, values, count } = await m.entries();
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * info.keySize, (i + 1) * info.keySize);
      const hex = k.toString('hex');
      if (!want.has(hex)) del.push(k);
      else have.set(hex, values.subarray(i * info.valueSize, (i + 1) * info.valueSize));
    }
  }
  const upd: [Buffer, Buffer][] = [];
  for (const [hex, v] of want) if (!have.get(hex)?.equals(v)) upd.push([Buffer.from(hex, 'hex'), v]);
  if (batch) {
    if (upd.length) await m.updateBatch(Buffer.concat(upd.map(([k]) => k)), Buffer.concat(upd.map(([, v]) => v)));
    if (del.length) await m.deleteBatch(Buffer.concat(del));
  } else {
    for (const [k, v] of upd) await m.update(k, v);
    for (const k of del) await m.delete(k);
  }
  return upd.length + del.length;
}

/** Mounts bpffs at @path unless one is there (berthd's own pins need it; tests pass a private one). */
async function ensureBpffs(path: string): Promise<void> {
  const r = await tryRun('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', path]);
  if (r.code === 0 && r.stdout.trim() === 'bpf') return;
  await stat(path).catch(() => mkdir(path, { recursive: true }));
  try {
    await run('mount', ['-t', 'bpf', 'bpf', path]);
  } catch (e) {
    throw new BerthError('unavailable', `bpffs is not mounted at ${path} and mounting it failed: ${(e as Error).message}`);
  }
}
