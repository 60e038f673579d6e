/**
 * The eBPF datapath: bpf/tc_container.c on every sandbox's host-side veth
 * (tc ingress), bpf/tc_uplink.c on the uplink (tc ingress) and bpf/tc_host.c
 * on lo (tc egress), sharing one set of maps. apply() translates the resolved
 * intent into map contents (compile.ts) and writes only the entries that
 * differ (maps.ts); published ports are rewritten into the idle half of a
 * two-generation table and switched in with one word (publish.ts).
 *
 * Maps and links are pinned under <bpffs>/berth, so the datapath keeps
 * forwarding while berthd is stopped, killed or upgraded. A new berthd loads
 * its programs against the pinned maps (programs.ts; their state carries
 * over), attaches each next to the pinned one, then detaches the old
 * (attach.ts): there is no moment without a program. teardown() removes
 * every attachment and pin. The connection table is tended by conntrack.ts,
 * the counters read by counters.ts.
 *
 * This file orchestrates; it decides nothing the intent already decided.
 */
import { mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BPFFS_ROOT, ensureBpffs } from '../../bpf/bpffs.js';
import { type NlLink, type RawMap } from '../../native/addon.js';
import { nl } from '../../netlink/index.js';
import { PUB_MAX, PUB_MAX_LIMIT } from '../../bpf/abi.js';
import { u32 as u32Codec } from '../../bpf/codec.js';
import type { Counts, Datapath, DatapathLimits, DatapathStatus, DesiredDatapath, DpEventBatch, DpExplainQuery, DpExplainResult, DpTraffic } from '../datapath.js';
import { frontKey, staleFronts } from '../desired.js';
import { SysctlKeeper, type Sysctl } from '../sysctl.js';
import { SerialQueue } from '../../serial.js';
import { ApplyTimer, lastApplyStatus, type LastApply } from '../apply-record.js';
import { EventWatch } from './events.js';
import { buildPacket, explainCtx, readRun, type ExplainRun } from './explain.js';
import { compile, type CompiledMaps, type Entries } from './compile.js';
import { loadPrograms, mapOf, openPinned, type Hook, type Loaded } from './programs.js';
import { MAPS, syncMap } from './maps.js';
import { planPins, PinsAside, type PinPlan } from './layout.js';
import { livePublishes, syncPublishes } from './publish.js';
import { Attachments } from './attach.js';
import { ConnTable, CT_MAX_DEFAULT } from './conntrack.js';
import { readDrops, readKernelDrops, readStats, readTraffic } from './counters.js';
import { BerthError } from '../../errors.js';

/**
 * The sysctls this datapath's mechanism needs besides the intent's forwarding
 * ones: answers of the host's own connections to published ports are put back
 * into lo with 127.0.0.1 or a local address as the source; the kernel then
 * routes them afresh, which these two allow on lo only.
 */
const BPF_SYSCTLS: Sysctl[] = [
  { key: 'net.ipv4.conf.lo.route_localnet', value: '1', required: true },
  { key: 'net.ipv4.conf.lo.accept_local', value: '1', required: true },
];

export class BpfDatapath implements Datapath {
  readonly kind = 'bpf' as const;
  private loaded: Loaded | undefined;
  private last: LastApply | undefined;
  /** an apply asking for the sysctls it asked for last reads none (drifted() checks them) */
  private readonly sysctls = new SysctlKeeper({ skipUnchanged: true });
  /** map name -> the entries last written: what the map holds, since only berthd writes it */
  private readonly mirror = new Map<string, Entries>();
  /** the publish table and allow-lists last written */
  private publishedKey = '';
  /** the publish selector word and allow map as this process left them (publish.ts) */
  private pubKnown: { sel?: number; allowEmpty?: boolean } = {};
  /** the intent of the last apply whose publish table went in: which front ends changed is said against it */
  private published: DesiredDatapath | undefined;
  private cfgWritten: Buffer | undefined;
  /** bridge ifindex -> network name, from the last apply */
  private readonly netNames = new Map<number, string>();
  private readonly attachments: Attachments;
  private readonly ct: ConnTable;
  /** applies and teardowns, one at a time */
  private readonly queue = new SerialQueue();
  private gc: NodeJS.Timeout | undefined;
  private watch: EventWatch | undefined;

  /** pins of another layout, set aside while the programs load */
  private aside: PinsAside | undefined;

  private constructor(
    private readonly log: Logger,
    readonly root: string,
    readonly ctMax: number,
    readonly pubMax: number,
    private readonly plan: PinPlan,
  ) {
    this.attachments = new Attachments(join(root, 'links'));
    this.ct = new ConnTable(root, ctMax, log);
  }

  /**
   * @bpffs: a mounted bpffs (the host's /sys/fs/bpf by default; mounted when it is not).
   * @ctMax: connection table entries (two a flow); a pinned table of another size is migrated.
   * @pubMax: publish-table entries (one a published port or range, per family); another size is rewritten.
   */
  static async create(opts: { log: Logger; bpffs?: string; ctMax?: number; pubMax?: number }): Promise<BpfDatapath> {
    const bpffs = opts.bpffs ?? BPFFS_ROOT;
    const ctMax = opts.ctMax ?? CT_MAX_DEFAULT;
    if (!Number.isInteger(ctMax) || ctMax < 1024 || ctMax > 1 << 26) {
      throw new BerthError('bad-request', `connection table size ${ctMax} is out of range (1024 to ${1 << 26})`);
    }
    await ensureBpffs(bpffs);
    const pubMax = opts.pubMax ?? PUB_MAX;
    if (!Number.isInteger(pubMax) || pubMax < 16 || pubMax > PUB_MAX_LIMIT) {
      throw new BerthError('bad-request', `publish table size ${pubMax} is out of range (16 to ${PUB_MAX_LIMIT})`);
    }
    const root = join(bpffs, 'berth');
    // Refused here, before any pin or program is touched, when a pinned map cannot be taken over.
    return new BpfDatapath(opts.log, root, ctMax, pubMax, await planPins(root, { ctMax, pubMax }));
  }

  /** Only to remove what is pinned, whatever its layout (switching to another backend). */
  static async forTeardown(opts: { log: Logger; bpffs?: string }): Promise<BpfDatapath> {
    return new BpfDatapath(opts.log, join(opts.bpffs ?? BPFFS_ROOT, 'berth'), CT_MAX_DEFAULT, PUB_MAX, { aside: [] });
  }

  private async load(): Promise<Loaded> {
    if (this.loaded) return this.loaded;
    await mkdir(this.attachments.linkDir, { recursive: true });
    const aside = await PinsAside.setAside(this.root, this.plan, this.log);
    try {
      await this.ct.setAsideResized();
      this.loaded = await loadPrograms(this.root, this.attachments.linkDir, { ctMax: this.ctMax, pubMax: this.pubMax }, this.log);
    } catch (e) {
      await aside.restore();
      throw e;
    }
    await aside.copy(this.loaded.maps);
    this.aside = aside;
    this.gc = setInterval(() => void this.collect().catch((e: unknown) => this.log.warn({ err: e }, 'connection table cleanup failed')), 30_000);
    this.gc.unref();
    return this.loaded;
  }

  private map(name: string): RawMap {
    return mapOf(this.loaded, name);
  }

  apply(desired: DesiredDatapath): Promise<void> {
    return this.queue.run(() => this.applyNow(desired));
  }

  private async applyNow(desired: DesiredDatapath): Promise<void> {
    const timer = new ApplyTimer();
    const l = await this.load();
    timer.lap();
    const [links, addrs] = await Promise.all([nl.linkList({}), nl.addrList({})]);
    timer.mark('netlink');
    const c = compile(desired, links, addrs);
    timer.mark('compile');
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
    // what decides the table's contents, cheaper to build than its 10,000 encoded rows
    const pubKey = c.pubs.map((p) => `${p.hostIp.toString('hex')}${p.target.toString('hex')}${p.start}-${p.end}:${p.cport}/${p.proto}/${p.flags}/${p.walk}`).join(',') + JSON.stringify(c.pubAllow);
    if (pubKey !== this.publishedKey) {
      changed += await this.syncPublishes(c, desired);
      this.publishedKey = pubKey;
    }
    this.published = desired;
    if (!this.cfgWritten?.equals(c.cfg)) {
      await this.map('berth_dp_cfg').update(u32Codec.encode(0), await this.cfgWithEvents(c.cfg));
      this.cfgWritten = c.cfg;
    }
    timer.mark('maps');
    // Forwarding before the programs redirect anything: the FIB helper refuses without it.
    const sys = await this.sysctls.ensure([...desired.sysctls, ...BPF_SYSCTLS]);
    timer.mark('sysctls');
    // A resized connection table: flows copied before the programs switch to it, and what they added meanwhile after.
    await this.ct.migrate(this.map('berth_dp_ct'), false);
    changed += await this.attachments.sync(l, c);
    await this.ct.migrate(this.map('berth_dp_ct'), true);
    await this.aside?.finish();
    this.aside = undefined;
    timer.mark('attach');
    this.last = timer.done({ warnings: c.warnings, changed });
    const ms = this.last.ms;
    const level = c.warnings.length ? 'warn' : sys.changed.length ? 'info' : 'debug';
    this.log[level]({ ms, changed, ...(sys.changed.length ? { sysctls: sys.changed } : {}), ...(c.warnings.length ? { warnings: c.warnings } : {}) }, 'bpf datapath applied');
  }

  /** The publish table's new generation; then the flows of the front ends the intent says changed, unless their translation still holds. */
  private syncPublishes(c: CompiledMaps, desired: DesiredDatapath): Promise<number> {
    const fronts = this.published ? staleFronts(this.published, desired) : undefined;
    const flush = () => this.ct.flushPublished(this.ctTables(), c.pubs, fronts);
    const live = new Set(desired.publishes.map(frontKey));
    return syncPublishes(
      { sel: this.map('berth_dp_pubsel'), table: this.map('berth_dp_pub'), allow: this.map('berth_dp_allow'), pubMax: this.pubMax, known: this.pubKnown },
      c,
      async () => {
        // Nothing removed or changed (an attach adds): no flow can be stale, and the tables need not be read.
        if (fronts?.length === 0) return 0;
        // Only removed front ends (a sandbox went): their flows lead nowhere either way, so the walk over the connection
        // tables (many flows: hundreds of ms) runs after the answer, but first in this datapath's queue: no later apply
        // (a new publish of the same port) goes in before those flows are gone. A retargeted front end is flushed here.
        if (fronts && !fronts.some((f) => live.has(frontKey(f)))) {
          void this.queue.run(flush).catch((e: unknown) => this.log.warn({ err: e }, 'flushing the flows of removed publishes failed'));
          return 0;
        }
        return flush();
      },
    );
  }

  /** Keeps monitor's event switches (set by `berth monitor`) across applies. */
  private async cfgWithEvents(cfg: Buffer): Promise<Buffer> {
    const cur = await this.map('berth_dp_cfg').lookup(u32Codec.encode(0));
    if (cur) cur.copy(cfg, 4, 4, 12);
    return cfg;
  }

  /** Deletes connection-table pairs both of whose entries expired. */
  async collect(): Promise<number> {
    if (!this.loaded) return 0;
    return this.ct.collect(this.ctTables());
  }

  /** The connection tables: established flows, then those without a completed handshake. */
  private ctTables(): RawMap[] {
    return [this.map('berth_dp_ct'), this.map('berth_dp_ct_new')];
  }

  /** A forced re-apply after drift reads every map back from the kernel. */
  private forget(): void {
    this.mirror.clear();
    this.publishedKey = '';
    this.pubKnown = {};
    this.cfgWritten = undefined;
    this.sysctls.forget();
  }

  async drifted(): Promise<boolean> {
    if (!this.loaded) return false;
    for (const path of this.attachments.attached.keys()) {
      if (!existsSync(path)) {
        this.log.warn({ pin: path }, 'a datapath attachment was removed outside berth');
        this.forget();
        return true;
      }
    }
    if (await this.sysctls.drifted(this.log)) {
      this.forget();
      return true;
    }
    return false;
  }

  teardown(): Promise<void> {
    return this.queue.run(() => this.teardownNow());
  }

  private async teardownNow(): Promise<void> {
    await this.watch?.stop();
    this.watch = undefined;
    if (this.gc) clearInterval(this.gc);
    this.gc = undefined;
    // Sandbox filters: berth's handle and priority on any veth (another process's berthd may have made them).
    await this.attachments.teardown();
    for (const o of this.loaded?.objects ?? []) o.close();
    this.loaded = undefined;
    this.forget();
    this.published = undefined;
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
      const up = this.attachments.uplink();
      dev = up !== undefined ? links.find((l) => l.ifindex === up) : undefined;
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
  async drops(): Promise<Counts> {
    return readDrops(this.map('berth_dp_drops'));
  }

  /** Packets and bytes per network and per published port, named by the last applied state. */
  async traffic(): Promise<DpTraffic> {
    const m = this.loaded?.maps.get('berth_dp_traffic');
    if (!m) return { networks: {}, publishes: {} };
    return readTraffic(m, this.mirror.get('berth_dp_nets') ?? new Map(), this.netNames);
  }

  /** The kernel's drops of berth's traffic by the kernel's reason name; null: not watched here. */
  async kernelDrops(): Promise<Counts | null> {
    const m = this.loaded?.maps.get('berth_dp_kdrops');
    return m ? readKernelDrops(m) : null;
  }

  /** What the tables hold: the controller refuses a change that would not fit. */
  limits(): DatapathLimits {
    return { publishEntries: this.pubMax };
  }

  async status(): Promise<DatapathStatus> {
    if (!this.loaded) {
      return { kind: 'bpf', detail: { root: this.root, loaded: false, ...(existsSync(this.root) ? { drops: await readDrops(await openPinned(this.root, 'berth_dp_drops')) } : {}) } };
    }
    const sizes: Record<string, { entries: number; max: number }> = {};
    for (const name of ['berth_dp_nets', 'berth_dp_ep_ip', 'berth_dp_links', 'berth_dp_ct', 'berth_dp_ct_new', 'berth_dp_allow', 'berth_dp_subnets']) {
      const m = this.map(name);
      sizes[name] = { entries: (await m.entries()).count, max: m.info().maxEntries };
    }
    sizes.berth_dp_pub = { entries: await livePublishes(this.map('berth_dp_pubsel')), max: this.pubMax };
    const stats = await readStats(this.map('berth_dp_stats'));
    return {
      kind: 'bpf',
      detail: {
        root: this.root,
        programs: Object.fromEntries(Object.entries(this.loaded.programs).map(([k, p]) => [k, p.info.id])),
        attachments: this.attachments.size,
        maps: sizes,
        ctFill: sizes.berth_dp_ct!.entries / sizes.berth_dp_ct!.max,
        drops: await this.drops(),
        kernelDrops: await this.kernelDrops(),
        traffic: await this.traffic(),
        stats,
        ...lastApplyStatus(this.last),
      },
    };
  }
}
