/**
 * The Controller owns all state (networks, sandboxes, endpoints, IPAM) and is
 * the only writer of the store. Every change is validated in full first, then
 * written to the store, then made in the kernel by drivers; a failure in the
 * kernel step undoes both. On start, reconcile() replays the store over the
 * kernel: what is missing is created, what berth owns and the store no longer
 * has is removed, and nothing else is touched.
 */
import { randomBytes } from 'node:crypto';
import { rm, mkdir, statfs, readdir, open, access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { nl } from '../netlink/index.js';
import { BerthError, badRequest, conflict, notFound } from '../errors.js';
import { validateOptions, parseKeyValues } from './options.js';
import { parseExpose, parsePortSpec, type PortSpec } from './portspec.js';
import { checkName, optBool, optString, strings, type ConnectRequest, type CreateNetworkRequest, type RunRequest, type UpdateRequest } from './requests.js';
import { parseEgressList } from './egress.js';
import { byRef, hostsEntries, linkEnv, netOwner, shortId } from './names.js';
import { allocate, makePool, poolFor, release } from '../ipam/ipam.js';
import { familyOf, overlaps, parseIp, parsePrefix, type Family, type Prefix } from '../ipam/addr.js';
import type { EmbeddedStore } from '../store/embedded.js';
import type { DaemonConfig, EndpointRecord, IpamPoolRecord, NetworkRecord, PoolRecord, PortProto, PublishRecord, SandboxRecord, State } from '../store/model.js';
import type { NetworkDriver } from '../drivers/driver.js';
import { BridgeDriver, mtuOf } from '../drivers/bridge.js';
import { MacvlanDriver } from '../drivers/macvlan.js';
import { OverlayDriver } from '../drivers/overlay.js';
import type { Cluster } from '../cluster/cluster.js';
import type { OverlayDataplane } from '../datapath/overlay/dataplane.js';
import { filesIn, hostResolvConf, renderHosts, renderResolvConf, usableNameservers, writeSandboxFiles } from '../sandbox/files.js';
import { isRunning, killSandboxProcess, processStart, startDetached, type ProcessSpec } from '../sandbox/process.js';
import { NETNS_DIR } from '../netns/topology.js';
import type { Datapath, DatapathStatus, DesiredDatapath, DpEventBatch, DpEventView } from '../datapath/datapath.js';
import type { PortHolder } from './ports.js';
import { explain as explainFlow, type ExplainRequest, type Explanation } from './explain.js';
import { desiredDatapath } from '../datapath/desired.js';

export const BUILTIN_NETWORKS = ['bridge', 'host', 'none'] as const;

/** Ports handed out for -P and for host port 0 (Docker uses the same range). */
const EPHEMERAL = { lo: 32768, hi: 60999 };

export interface ControllerEvents {
  /** a user-defined network came up or went away: the DNS server follows it */
  networkUp?(n: NetworkRecord): Promise<void>;
  networkDown?(n: NetworkRecord): Promise<void>;
}

export interface ControllerOptions {
  store: EmbeddedStore;
  stateDir: string;
  /** the host resolv.conf sandboxes inherit (read when their files are written) */
  resolvConf?: string;
  config: DaemonConfig;
  log: Logger;
  events?: ControllerEvents;
  /** the packet datapath; told the whole desired state after every change */
  datapath?: Datapath;
  uplink?: string;
  /** cluster membership (berthd --store etcd://...): global overlay networks */
  cluster?: Cluster;
  overlay?: OverlayDataplane;
  /** MTU of the underlay device: overlay networks default to 50 less */
  underlayMtu?: number;
  /** hold every published host port with a bound socket (berthd does; see ports.ts) */
  ports?: PortHolder;
  /** told how long each datapath apply took (the metrics' histogram) */
  onApply?(seconds: number, ok: boolean): void;
}

export class Controller {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly drivers: Record<string, NetworkDriver> = {
    bridge: new BridgeDriver(),
    macvlan: new MacvlanDriver(),
    overlay: new OverlayDriver(() => this.opts.overlay),
  };

  private constructor(
    private state: State,
    private readonly opts: ControllerOptions,
  ) {}

  static async open(opts: ControllerOptions): Promise<Controller> {
    const state = await opts.store.load();
    const c = new Controller(state, opts);
    await c.ensureDefaultNetwork();
    c.watchCluster();
    return c;
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** A read-only view of the current state (callers must not mutate it). */
  snapshot(): State {
    return this.state;
  }

  /** Runs mutations one at a time, in arrival order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const op = async () => {
      try {
        return await fn();
      } finally {
        // Also after a failed operation: its undo changed the state too.
        this.opts.ports?.sync(Object.values(this.state.sandboxes).flatMap((s) => s.publish));
        await this.syncDatapath();
        await this.syncCluster();
      }
    };
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private applied = '';

  /** The datapath intent resolved from the current state: what every backend is told. */
  desired(): DesiredDatapath {
    return desiredDatapath(this.state, this.opts.uplink);
  }

  /** Hands the datapath the desired state when it changed since the last apply. */
  private async syncDatapath(force = false): Promise<void> {
    const dp = this.opts.datapath;
    if (!dp) return;
    const desired = this.desired();
    const key = JSON.stringify(desired);
    if (!force && key === this.applied) return;
    const t0 = performance.now();
    const took = (ok: boolean) => this.opts.onApply?.((performance.now() - t0) / 1000, ok);
    await dp.apply(desired).then(() => took(true), (e: unknown) => {
      took(false);
      throw e;
    });
    this.applied = key;
  }

  /** What the datapath reports of itself: its kind, table fill, drop counters. */
  async datapathStatus(): Promise<DatapathStatus> {
    return this.opts.datapath ? this.opts.datapath.status() : { kind: 'none', detail: {} };
  }

  /**
   * Datapath events after @since, each with the sandboxes and networks its
   * addresses belong to; filters by sandbox or network name.
   */
  async datapathEvents(since: number, filter: { sandbox?: string; network?: string } = {}): Promise<DpEventBatch & { events: (DpEventView & { from?: string; to?: string; fromNetwork?: string; toNetwork?: string })[] }> {
    const dp = this.opts.datapath;
    if (!dp?.events) throw badRequest(`berth monitor needs the eBPF datapath; this berthd runs ${dp?.kind ?? 'none'}`);
    if (filter.sandbox) this.sandbox(filter.sandbox);
    const nets = Object.values(this.state.networks);
    const netName = (id: string) => nets.find((n) => n.id === id)?.name ?? id;
    if (filter.network && !nets.some((n) => n.name === filter.network || n.id === filter.network)) throw notFound(`network '${filter.network}' not found`);
    const who = new Map<string, { sandbox: string; network: string }>();
    for (const sb of Object.values(this.state.sandboxes)) {
      for (const ep of sb.endpoints) for (const a of [ep.v4, ep.v6]) if (a) who.set(a, { sandbox: sb.name, network: netName(ep.network) });
    }
    const b = await dp.events(since);
    const events = b.events.map((e) => {
      const f = who.get(e.src) ?? (e.nsrc ? who.get(e.nsrc) : undefined);
      const t = who.get(e.dst) ?? (e.ndst ? who.get(e.ndst) : undefined);
      return { ...e, ...(f ? { from: f.sandbox, fromNetwork: f.network } : {}), ...(t ? { to: t.sandbox, toNetwork: t.network } : {}) };
    }).filter((e) => (!filter.sandbox || e.from === filter.sandbox || e.to === filter.sandbox) &&
      (!filter.network || e.fromNetwork === filter.network || e.toNetwork === filter.network));
    return { ...b, events };
  }

  /** `berth explain`: the datapath's own answer for a synthetic new connection. */
  explain(req: ExplainRequest): Promise<Explanation> {
    if (!req || typeof req !== 'object' || typeof req.src !== 'string' || typeof req.dst !== 'string') throw badRequest('explain needs {"src": ..., "dst": ...}');
    return explainFlow(this.state, this.opts.datapath, req);
  }

  /** Re-applies the datapath when something outside berth changed it; true when it did. */
  repairDatapath(): Promise<boolean> {
    return this.serial(async () => {
      const dp = this.opts.datapath;
      if (!dp || !(await dp.drifted())) return false;
      this.log.warn({ datapath: dp.kind }, 'datapath changed outside berth (firewall reload?): re-applying');
      await this.syncDatapath(true);
      return true;
    });
  }

  private async save(): Promise<void> {
    await this.opts.store.save(this.state);
  }

  /** Runs @fn on a copy of the state; commits it (to memory and the store) only if @fn succeeds. */
  private async transact<T>(fn: (draft: State) => T): Promise<T> {
    const draft = structuredClone(this.state);
    const out = fn(draft);
    this.state = draft;
    await this.save();
    return out;
  }

  // ---------------------------------------------------------------- lookups

  network(ref: string): NetworkRecord {
    const n = byRef(Object.values(this.state.networks), ref);
    if (!n) throw notFound(`network '${ref}' not found`);
    return n;
  }

  sandbox(ref: string): SandboxRecord {
    const s = byRef(Object.values(this.state.sandboxes), ref);
    if (!s) throw notFound(`sandbox '${ref}' not found`);
    return s;
  }

  private usedPrefixes(except?: string): Prefix[] {
    return [
      ...Object.values(this.state.networks)
        .filter((n) => n.id !== except)
        .flatMap((n) => n.pools.map((p) => parsePrefix(p.subnet))),
      ...Object.values(this.state.ipamPools ?? {}).map((p) => parsePrefix(p.subnet)),
    ];
  }

  /** Prefixes routed on this host other than through berth's own bridges (subnets must not overlap them). */
  private async hostRoutes(): Promise<{ prefix: Prefix; dev: string }[]> {
    const ours = new Set(Object.values(this.state.networks).map((n) => n.bridge).filter(Boolean));
    const out: { prefix: Prefix; dev: string }[] = [];
    for (const family of [4, 6] as const) {
      for (const r of await nl.routeList({ family })) {
        if (r.dst === 'default' || (r.dev && ours.has(r.dev))) continue;
        if (family === 6 && r.dst.startsWith('fe80:')) continue;
        try {
          out.push({ prefix: parsePrefix(r.dst, 'route', true), dev: r.dev ?? '' });
        } catch {
          /* routes of other kinds (multicast etc.) are not address space */
        }
      }
    }
    return out;
  }

  /** @hostRoutes false for macvlan: its subnet is the parent's network, which the host routes by design. */
  private async checkSubnetFree(p: Prefix, hostRoutes = true, except?: string): Promise<void> {
    for (const n of Object.values(this.state.networks)) {
      if (n.id === except) continue;
      for (const pool of n.pools) {
        if (overlaps(p, parsePrefix(pool.subnet))) throw conflict(`subnet ${p.text} overlaps ${pool.subnet} of network '${n.name}'`);
      }
    }
    for (const r of hostRoutes ? await this.hostRoutes() : []) {
      if (overlaps(p, r.prefix)) throw conflict(`subnet ${p.text} overlaps the host's route ${r.prefix.text}${r.dev ? ` on ${r.dev}` : ''}`);
    }
  }

  /** The first free /16 of 172.17-31 or /20 of 192.168, as Docker's default pools. */
  private async autoSubnet4(): Promise<string> {
    const used = [...this.usedPrefixes(), ...(await this.hostRoutes()).map((r) => r.prefix)];
    const candidates: string[] = [];
    for (let b = 17; b <= 31; b++) candidates.push(`172.${b}.0.0/16`);
    for (let c = 0; c < 256; c += 16) candidates.push(`192.168.${c}.0/20`);
    const free = candidates.find((c) => !used.some((u) => overlaps(parsePrefix(c), u)));
    if (!free) throw conflict('no free address pool left for a new network: give one with --subnet');
    return free;
  }

  private autoSubnet6(): string {
    const used = this.usedPrefixes();
    for (;;) {
      const r = randomBytes(5).toString('hex');
      const cand = `fd${r.slice(0, 2)}:${r.slice(2, 6)}:${r.slice(6, 10)}::/64`;
      if (!used.some((u) => overlaps(parsePrefix(cand), u))) return cand;
    }
  }

  // --------------------------------------------------------------- networks

  private async ensureDefaultNetwork(): Promise<void> {
    if (Object.values(this.state.networks).some((n) => n.isDefault)) return;
    const cfg = this.opts.config;
    const pool = makePool({ subnet: cfg.defaultSubnet, ...(cfg.defaultGateway ? { gateway: cfg.defaultGateway } : {}), ...(cfg.defaultIpRange ? { ipRange: cfg.defaultIpRange } : {}) });
    const id = randomBytes(32).toString('hex');
    await this.transact((s) => {
      s.networks[id] = { id, name: 'bridge', driver: 'bridge', internal: false, ipv6: false, options: {}, pools: [pool], bridge: cfg.defaultBridge, isDefault: true, created: new Date().toISOString() };
    });
  }

  createNetwork(req: CreateNetworkRequest): Promise<NetworkRecord> {
    return this.serial(async () => {
      const name = checkName(req?.name, 'network');
      if ((BUILTIN_NETWORKS as readonly string[]).includes(name)) throw conflict(`network name '${name}' is reserved for a built-in network`);
      if (Object.values(this.state.networks).some((n) => n.name === name)) throw conflict(`network '${name}' already exists`);
      const driver = req.driver ?? 'bridge';
      if (driver !== 'bridge' && driver !== 'macvlan' && driver !== 'overlay') throw badRequest(`unknown network driver '${driver}' (valid: bridge, macvlan, overlay)`);
      if (driver === 'overlay') return this.createOverlayNow(req, name);
      const options = validateOptions(driver, req.options ?? {});
      const internal = optBool(req.internal, 'internal');
      const ipv6 = optBool(req.ipv6, 'ipv6');
      const subnets = strings(req.subnets, 'subnets');
      const gateways = strings(req.gateways, 'gateways');
      const ranges = strings(req.ipRanges, 'ip-ranges');
      const aux = req.auxAddresses ?? {};

      const byFamily = new Map<Family, Prefix>();
      for (const s of subnets) {
        const p = parsePrefix(s, 'subnet');
        if (byFamily.has(p.family)) throw badRequest(`two IPv${p.family} subnets given (${byFamily.get(p.family)!.text} and ${p.text}): berth takes one per family`);
        await this.checkSubnetFree(p, driver !== 'macvlan');
        byFamily.set(p.family, p);
      }
      if (byFamily.has(6) && !ipv6) throw badRequest(`IPv6 subnet ${byFamily.get(6)!.text} given without --ipv6`);
      if (!byFamily.has(4)) {
        if (driver === 'macvlan') throw badRequest('a macvlan network needs --subnet (the parent network\'s) and usually --gateway');
        byFamily.set(4, parsePrefix(await this.autoSubnet4()));
      }
      if (ipv6 && !byFamily.has(6)) byFamily.set(6, parsePrefix(this.autoSubnet6()));
      const fam = (ip: string, what: string): Family => {
        const f = familyOf(ip) ?? familyOf(ip.split('/')[0] ?? '');
        if (!f) throw badRequest(`invalid ${what} '${ip}'`);
        if (!byFamily.has(f)) throw badRequest(`${what} ${ip} has no IPv${f} subnet to belong to`);
        return f;
      };
      const pools = [...byFamily.entries()].map(([f, p]) =>
        makePool({
          subnet: p.text,
          ...(gateways.find((g) => fam(g, 'gateway') === f) ? { gateway: gateways.find((g) => fam(g, 'gateway') === f)! } : {}),
          ...(ranges.find((r) => fam(r, 'ip-range') === f) ? { ipRange: ranges.find((r) => fam(r, 'ip-range') === f)! } : {}),
          aux: Object.fromEntries(Object.entries(aux).filter(([, a]) => fam(a, 'aux-address') === f)),
        }),
      );
      const id = randomBytes(32).toString('hex');
      let bridge: string | undefined;
      let parent: string | undefined;
      if (driver === 'bridge') {
        bridge = options['bridge.name'] ?? `bb-${id.slice(0, 12)}`;
        if (Object.values(this.state.networks).some((n) => n.bridge === bridge)) throw conflict(`bridge name '${bridge}' is used by another network`);
        const existing = (await nl.linkList({})).find((l) => l.name === bridge);
        if (existing) throw conflict(`an interface named '${bridge}' already exists on this host and is not berth's`);
      } else {
        parent = options.parent;
        if (!parent) throw badRequest('a macvlan network needs -o parent=IFACE');
      }
      const rec: NetworkRecord = { id, name, driver, internal, ipv6, options, pools, ...(bridge ? { bridge } : {}), ...(parent ? { parent } : {}), isDefault: false, created: new Date().toISOString() };
      await this.adoptNetwork(rec);
      this.log.info({ network: name, id: shortId(id), subnets: pools.map((p) => p.subnet) }, 'network created');
      return rec;
    });
  }

  private membersOf(n: NetworkRecord): SandboxRecord[] {
    return Object.values(this.state.sandboxes).filter((s) => s.endpoints.some((e) => e.network === n.id));
  }

  removeNetwork(ref: string): Promise<void> {
    return this.serial(() => this.removeNetworkNow(ref));
  }

  private async removeNetworkNow(ref: string, byEngine = false): Promise<void> {
    if (ref === 'host' || ref === 'none') throw badRequest(`'${ref}' is a pre-defined network and cannot be removed`);
    const n = this.network(ref);
    if (n.external && !byEngine) throw badRequest(`network '${n.name}' belongs to ${n.external.engine}: remove it there (docker network rm)`);
    if (n.isDefault) throw badRequest(`'${n.name}' is a pre-defined network and cannot be removed`);
    const members = this.membersOf(n);
    if (members.length) {
      throw conflict(`network '${n.name}' has active endpoints (${members.map((m) => m.name).join(', ')}): disconnect or remove them first`);
    }
    // A global network goes from the cluster first: that fails while any host has endpoints on it, or the store is down.
    if (n.scope === 'global') await this.clusterOrFail(n.name).deleteNetwork(n);
    await this.transact((s) => {
      delete s.networks[n.id];
    });
    await this.opts.events?.networkDown?.(n);
    await this.drivers[n.driver]!.deleteNetwork(n);
    this.log.info({ network: n.name }, 'network removed');
  }

  pruneNetworks(): Promise<string[]> {
    return this.serial(async () => {
      const removed: string[] = [];
      for (const n of Object.values(this.state.networks)) {
        if (n.isDefault || n.external || this.membersOf(n).length) continue;
        await this.removeNetworkNow(n.id);
        removed.push(n.name);
      }
      return removed;
    });
  }

  // -------------------------------------------------------------- endpoints

  private hostIfName(epId: string): string {
    return `bv${epId.slice(0, 12)}`;
  }

  private macFor(v4?: string): string {
    const bytes = v4 ? v4.split('.').map(Number) : [...randomBytes(4)];
    return ['02', 'b7', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
  }

  /** Allocates an endpoint of @sb on @n in @draft (addresses taken from its pools). */
  private newEndpoint(draft: State, n: NetworkRecord, sb: SandboxRecord, req: { ip?: string; ip6?: string; aliases?: string[] }): EndpointRecord {
    const net = draft.networks[n.id]!;
    if (net.external) throw badRequest(`network '${net.name}' belongs to ${net.external.engine}: berth's sandboxes cannot join it`);
    if ((req.ip || req.ip6) && net.isDefault) {
      throw badRequest(`user-specified IP address is supported on user-defined networks only (not on '${net.name}')`);
    }
    const v4pool = poolFor(net.pools, 4);
    const v6pool = poolFor(net.pools, 6);
    if (req.ip && familyOf(req.ip) !== 4) throw badRequest(`--ip ${req.ip} is not an IPv4 address`);
    if (req.ip6 && !v6pool) throw badRequest(`--ip6 ${req.ip6} given but network '${net.name}' has no IPv6`);
    const v4 = v4pool ? allocate(v4pool, req.ip) : undefined;
    const v6 = v6pool ? allocate(v6pool, req.ip6) : undefined;
    const used = new Set(sb.endpoints.map((e) => e.ifname));
    let i = 0;
    while (used.has(`eth${i}`)) i++;
    const id = randomBytes(32).toString('hex');
    return {
      id,
      network: net.id,
      ifname: `eth${i}`,
      ...(net.driver === 'bridge' || net.driver === 'overlay' ? { hostIf: this.hostIfName(id) } : {}),
      mac: this.macFor(v4),
      ...(v4 ? { v4 } : {}),
      ...(v6 ? { v6 } : {}),
      aliases: req.aliases ?? [],
    };
  }

  private releaseEndpoint(draft: State, ep: EndpointRecord): void {
    const n = draft.networks[ep.network];
    if (!n) return;
    for (const pool of n.pools) for (const a of [ep.v4, ep.v6]) if (a) release(pool, a);
  }

  /** The endpoint that carries @sb's default routes: the first on a network with a way out. */
  private gatewayEndpoint(sb: SandboxRecord): EndpointRecord | undefined {
    return sb.endpoints.find((e) => !this.state.networks[e.network]?.internal);
  }

  private async joinEndpoint(sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    const n = this.state.networks[ep.network]!;
    await this.drivers[n.driver]!.join(n, sb, ep, { gateway: this.gatewayEndpoint(sb)?.id === ep.id, mtu: mtuOf(n) });
  }

  // -------------------------------------------------------------- sandboxes

  private sandboxDir(id: string): string {
    return join(this.opts.stateDir, 'sandboxes', id);
  }

  private netnsPathFor(id: string): string {
    return `${NETNS_DIR}/berth-${this.state.instance}-${shortId(id)}`;
  }

  /** Writes @sb's hosts, resolv.conf and hostname files from the current state. */
  private async writeFiles(sb: SandboxRecord): Promise<void> {
    const owner = netOwner(this.state, sb);
    const dnsNet = owner.endpoints.map((e) => this.state.networks[e.network]).find((n) => n && !n.isDefault && (n.driver === 'bridge' || n.driver === 'overlay'));
    const host = await hostResolvConf(this.opts.resolvConf);
    const resolv = dnsNet
      ? { nameservers: [poolFor(dnsNet.pools, 4)!.gateway], search: sb.dnsSearch.length ? sb.dnsSearch : host.search, options: ['ndots:0'] }
      : { nameservers: sb.dns.length ? sb.dns : usableNameservers(host.nameservers), search: sb.dnsSearch.length ? sb.dnsSearch : host.search, options: host.options };
    await writeSandboxFiles(this.sandboxDir(sb.id), {
      hosts: renderHosts(hostsEntries(this.state, sb)),
      resolvConf: renderResolvConf(resolv),
      hostname: sb.hostname,
    });
  }

  /** Rewrites the hosts files of every sandbox linked to @target (its address may have changed). */
  private async refreshLinkers(target: SandboxRecord): Promise<void> {
    for (const s of Object.values(this.state.sandboxes)) {
      if (s.id !== target.id && s.links.some((l) => l.target === target.id)) await this.writeFiles(s).catch(() => undefined);
    }
  }

  private parsePublishes(specs: string[], publishAll: boolean, expose: { port: number; proto: string }[], sbId: string, draft: State): PublishRecord[] {
    return this.allocatePublishes(specs.map(parsePortSpec), publishAll, expose, sbId, draft);
  }

  private allocatePublishes(parsed: PortSpec[], publishAll: boolean, expose: { port: number; proto: string }[], sbId: string, draft: State): PublishRecord[] {
    if (publishAll) {
      for (const e of expose) {
        if (!parsed.some((p) => p.containerPort <= e.port && e.port <= p.containerEnd && p.proto === e.proto)) {
          parsed.push({ hostIp: '', hostPort: 0, hostEnd: 0, containerPort: e.port, containerEnd: e.port, proto: e.proto as PortSpec['proto'] });
        }
      }
    }
    const taken: PublishRecord[] = Object.values(draft.sandboxes).filter((s) => s.id !== sbId).flatMap((s) => s.publish);
    const out: PublishRecord[] = [];
    const clash = (ip: string, lo: number, count: number, proto: string) =>
      [...taken, ...out].find((t) => t.proto === proto && (t.hostIp === '' || ip === '' || t.hostIp === ip) && t.hostPort <= lo + count - 1 && lo <= t.hostPort + t.count - 1);
    for (const p of parsed) {
      const count = p.containerEnd - p.containerPort + 1;
      let host = p.hostPort;
      if (!host || (p.hostEnd > p.hostPort && count === 1)) {
        // Any free port: from the given host range, or the ephemeral range.
        const lo = host || EPHEMERAL.lo;
        const hi = host ? p.hostEnd : EPHEMERAL.hi;
        let pick = host ? lo : (draft.nextEphemeral ?? EPHEMERAL.lo);
        let found = 0;
        for (let i = 0; i <= hi - lo; i++) {
          if (pick + count - 1 > hi) pick = lo;
          if (!clash(p.hostIp, pick, count, p.proto) && !this.opts.ports?.inUse({ hostIp: p.hostIp, hostPort: pick, count, proto: p.proto })) { found = pick; break; }
          pick += 1;
        }
        if (!found) throw conflict(`no free host port for ${p.containerPort}/${p.proto} in ${lo}-${hi}`);
        host = found;
        if (!p.hostPort) draft.nextEphemeral = found + count > EPHEMERAL.hi ? EPHEMERAL.lo : found + count;
      } else {
        const c = clash(p.hostIp, host, count, p.proto);
        if (c) {
          const owner = Object.values(draft.sandboxes).find((s) => s.publish.includes(c));
          throw conflict(`host port ${p.hostIp ? `${p.hostIp}:` : ''}${host}${count > 1 ? `-${host + count - 1}` : ''}/${p.proto} is already published${owner ? ` by '${owner.name}'` : ''}`);
        }
        const busy = this.opts.ports?.inUse({ hostIp: p.hostIp, hostPort: host, count, proto: p.proto });
        if (busy) throw conflict(busy);
      }
      out.push({ hostIp: p.hostIp, hostPort: host, count, containerPort: p.containerPort, proto: p.proto });
    }
    return out;
  }

  run(req: RunRequest): Promise<SandboxRecord> {
    return this.serial(() => this.runNow(req));
  }

  private async runNow(req: RunRequest): Promise<SandboxRecord> {
    // 1. Validate everything before anything changes.
    const cmd = strings(req?.cmd, 'cmd');
    if (!cmd.length) throw badRequest('no command given: berth run ... -- CMD [ARGS]');
    const id = randomBytes(32).toString('hex');
    const name = req.name ? checkName(req.name, 'sandbox') : `sandbox-${id.slice(0, 6)}`;
    if (Object.values(this.state.sandboxes).some((s) => s.name === name)) throw conflict(`sandbox name '${name}' is already in use`);
    const netRef = optString(req.network, 'network') ?? 'bridge';
    const hostname = optString(req.hostname, 'hostname') ?? shortId(id);
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(hostname)) throw badRequest(`invalid hostname '${hostname}'`);
    const dns = strings(req.dns, 'dns').map((d) => parseIp(d, 'DNS server').text);
    const dnsSearch = strings(req.dnsSearch, 'dns-search');
    for (const d of dnsSearch) if (!/^[a-zA-Z0-9.-]+$/.test(d)) throw badRequest(`invalid DNS search domain '${d}'`);
    const addHosts = strings(req.addHosts, 'add-host').map((h) => {
      const i = h.lastIndexOf(':', h.includes('[') ? h.indexOf('[') : undefined);
      const host = h.slice(0, h.indexOf(':'));
      const ip = h.slice(h.indexOf(':') + 1).replace(/^\[|\]$/g, '');
      if (i < 0 || !host || !/^[a-zA-Z0-9.-]+$/.test(host)) throw badRequest(`invalid --add-host '${h}': expected HOST:IP`);
      return { host, ip: parseIp(ip, `address in --add-host '${h}'`).text };
    });
    const env = strings(req.env, 'env');
    parseKeyValues(env, 'environment variable');
    const expose = strings(req.expose, 'expose').flatMap(parseExpose);
    const publishAllow = strings(req.publishAllow, 'publish-allow').map((c) => parsePrefix(c, 'publish-allow source', true).text);
    const egressAllow = parseEgressList(strings(req.egressAllow, 'egress-allow'));
    const aliases = strings(req.networkAliases, 'network-alias');
    for (const a of aliases) checkName(a, 'network alias');
    const links = strings(req.links, 'link').map((l) => {
      const [tname = '', alias] = l.split(':');
      const t = this.sandbox(tname);
      return { target: t.id, alias: alias ? checkName(alias, 'link alias') : t.name };
    });
    const publishSpecs = strings(req.publish, 'publish');
    const publishAll = optBool(req.publishAll, 'publish-all');

    let mode: SandboxRecord['mode'] = 'networks';
    let sharedWith: string | undefined;
    let network: NetworkRecord | undefined;
    if (netRef === 'host') mode = 'host';
    else if (netRef === 'none') mode = 'none';
    else if (netRef.startsWith('container:')) {
      mode = 'container';
      const target = netOwner(this.state, this.sandbox(netRef.slice('container:'.length)));
      sharedWith = target.id;
    } else network = this.network(netRef);
    if (mode !== 'networks') {
      if (publishSpecs.length || publishAll) throw badRequest(`published ports (-p/-P) need a network: --network ${netRef} has none of its own`);
      if (req.ip || req.ip6) throw badRequest(`--ip needs a network: --network ${netRef} has none of its own`);
      if (aliases.length) throw badRequest(`--network-alias needs a network: --network ${netRef} has none of its own`);
      if (egressAllow) throw badRequest(`--egress-allow needs a network: --network ${netRef} has none of its own${mode === 'container' ? ' (the list of the sandbox whose namespace it shares applies)' : ''}`);
    }

    // A global network's address is taken in the cluster store first (the local pool then only records it).
    const clusterIp = network?.scope === 'global' ? await this.clusterAllocate(network, id, req.ip) : undefined;

    // 2. Allocate and record (the store first: a crash from here on is repaired by reconcile).
    const t0 = process.hrtime.bigint();
    const sb = await this.transact((draft) => {
      const rec: SandboxRecord = {
        id, name, created: new Date().toISOString(), mode, ...(sharedWith ? { sharedWith } : {}),
        netnsPath: mode === 'host' ? '' : mode === 'container' ? draft.sandboxes[sharedWith!]!.netnsPath : this.netnsPathFor(id),
        hostname, dns, dnsSearch, addHosts, env, links, expose, publish: [], publishAll, publishAllow, endpoints: [], cmd,
        ...(egressAllow ? { egressAllow } : {}),
      };
      rec.publish = this.parsePublishes(publishSpecs, publishAll, expose, id, draft);
      const ip = clusterIp ?? req.ip;
      if (network) rec.endpoints.push(this.newEndpoint(draft, network, rec, { ...(ip ? { ip } : {}), ...(req.ip6 ? { ip6: req.ip6 } : {}), aliases }));
      draft.sandboxes[id] = rec;
      return rec;
    });

    // 3. Make it real; undo everything on failure.
    try {
      await this.realizeSandbox(sb);
      await this.writeFiles(sb);
      await this.startProcess(sb);
    } catch (e) {
      await this.destroySandbox(sb).catch(() => undefined);
      await this.transact((s) => {
        for (const ep of s.sandboxes[id]?.endpoints ?? []) this.releaseEndpoint(s, ep);
        delete s.sandboxes[id];
      });
      throw e;
    }
    await this.refreshLinkers(sb);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    this.log.info({ sandbox: name, id: shortId(id), mode, addresses: sb.endpoints.map((e) => e.v4), ms: Math.round(ms * 100) / 100 }, 'sandbox running');
    return this.state.sandboxes[id]!;
  }

  /** Creates @sb's namespace (when it has its own) and joins its endpoints. Idempotent. */
  private async realizeSandbox(sb: SandboxRecord): Promise<void> {
    // Another engine owns an external sandbox's namespace: berth cannot remake its interface there.
    if (sb.mode === 'external') return;
    if (sb.mode === 'networks' || sb.mode === 'none') {
      if (!(await nsExists(sb.netnsPath))) await nl.netnsCreate(sb.netnsPath);
    }
    for (const ep of sb.endpoints) {
      const n = this.state.networks[ep.network];
      if (!n) continue;
      const d = this.drivers[n.driver]!;
      if (await d.endpointPresent(n, sb, ep)) continue;
      await d.leave(n, sb, ep).catch(() => undefined);
      await this.joinEndpoint(sb, ep);
    }
  }

  private async destroySandbox(sb: SandboxRecord): Promise<void> {
    if (sb.mode === 'external') {
      for (const ep of sb.endpoints) if (ep.hostIf) await nl.linkDel({ name: ep.hostIf }).catch(() => undefined);
      if (sb.external) await nl.linkDel({ name: sb.external.peer }).catch(() => undefined);
      return;
    }
    if (sb.pid && isRunning(sb.pid, sb.pidStart)) killSandboxProcess(sb.pid);
    for (const ep of sb.endpoints) {
      const n = this.state.networks[ep.network];
      if (n) await this.drivers[n.driver]!.leave(n, sb, ep).catch(() => undefined);
    }
    if (sb.mode === 'networks' || sb.mode === 'none') await nl.netnsDelete(sb.netnsPath).catch(() => undefined);
    await rm(this.sandboxDir(sb.id), { recursive: true, force: true });
  }

  processSpec(sb: SandboxRecord, cmd: string[]): ProcessSpec {
    const envList = [...Object.entries(linkEnv(this.state, sb)).map(([k, v]) => `${k}=${v}`), ...sb.env];
    return {
      // Host mode runs in berthd's own namespace, which a CLI elsewhere reaches through /proc.
      netnsPath: sb.mode === 'host' ? `/proc/${process.pid}/ns/net` : sb.netnsPath,
      files: filesIn(this.sandboxDir(sb.id)),
      hostname: sb.hostname,
      env: parseKeyValues(envList, 'environment variable'),
      cmd,
    };
  }

  private async startProcess(sb: SandboxRecord): Promise<void> {
    const dir = this.sandboxDir(sb.id);
    await mkdir(dir, { recursive: true });
    const child = startDetached(this.processSpec(sb, sb.cmd), join(dir, 'output.log'));
    const pid = child.pid;
    if (!pid) throw new BerthError('internal', `could not start '${sb.cmd.join(' ')}' in sandbox '${sb.name}'`);
    const pidStart = processStart(pid) ?? '';
    child.on('exit', (code, signal) => {
      this.serial(async () => {
        const cur = this.state.sandboxes[sb.id];
        if (cur?.pid !== pid) return;
        await this.transact((s) => {
          s.sandboxes[sb.id]!.exitCode = code ?? (signal ? 128 : null);
        });
      }).catch((e: unknown) => this.log.error({ err: e, sandbox: sb.name }, 'could not record exit code'));
    });
    await this.transact((s) => {
      const rec = s.sandboxes[sb.id]!;
      rec.pid = pid;
      rec.pidStart = pidStart;
      rec.exitCode = null;
    });
  }

  removeSandbox(ref: string, force: boolean): Promise<void> {
    return this.serial(async () => {
      const sb = this.sandbox(ref);
      if (sb.mode === 'external') throw badRequest(`sandbox '${sb.name}' belongs to ${sb.external?.engine ?? 'another engine'}: remove the container there`);
      if (isRunning(sb.pid, sb.pidStart) && !force) {
        throw conflict(`sandbox '${sb.name}' is running: use rm -f to kill and remove it`);
      }
      const sharers = Object.values(this.state.sandboxes).filter((s) => s.sharedWith === sb.id);
      if (sharers.length) throw conflict(`sandbox '${sb.name}' shares its network namespace with ${sharers.map((s) => s.name).join(', ')}: remove them first`);
      await this.transact((s) => {
        for (const ep of sb.endpoints) this.releaseEndpoint(s, ep);
        delete s.sandboxes[sb.id];
      });
      await this.destroySandbox(sb);
      await this.refreshLinkers(sb);
      this.log.info({ sandbox: sb.name }, 'sandbox removed');
    });
  }

  /** Changes a sandbox in place: its egress allow-list (new connections follow it; no restart). */
  update(ref: string, req: UpdateRequest): Promise<SandboxRecord> {
    return this.serial(async () => {
      const sb = this.sandbox(ref);
      const list = parseEgressList(strings(req?.egressAllow, 'egress-allow'));
      const clear = optBool(req?.egressClear, 'egress-clear');
      if (list && clear) throw badRequest('--egress-allow and --egress-clear contradict each other: give one');
      if (!list && !clear) throw badRequest('nothing to update: give --egress-allow CIDR[:PORT[/PROTO]] (repeatable, or none) or --egress-clear');
      if (sb.mode !== 'networks') throw badRequest(`sandbox '${sb.name}' uses --network ${sb.mode === 'container' ? 'container:…' : sb.mode}: an egress allow-list needs a network of its own`);
      await this.transact((s) => {
        const cur = s.sandboxes[sb.id]!;
        if (list) cur.egressAllow = list;
        else delete cur.egressAllow;
      });
      this.log.info({ sandbox: sb.name, egressAllow: list ?? 'network default' }, 'sandbox updated');
      return this.state.sandboxes[sb.id]!;
    });
  }

  connect(netRef: string, req: ConnectRequest): Promise<EndpointRecord> {
    return this.serial(async () => {
      const n = this.network(netRef);
      const sb = this.sandbox(checkName(req?.sandbox, 'sandbox'));
      if (sb.mode !== 'networks') throw badRequest(`sandbox '${sb.name}' uses --network ${sb.mode === 'container' ? 'container:…' : sb.mode} and cannot be connected to networks`);
      if (sb.endpoints.some((e) => e.network === n.id)) throw conflict(`sandbox '${sb.name}' is already connected to network '${n.name}'`);
      const aliases = strings(req.aliases, 'aliases');
      for (const a of aliases) checkName(a, 'network alias');
      const ip = n.scope === 'global' ? await this.clusterAllocate(n, sb.id, req.ip) : req.ip;
      const ep = await this.transact((draft) => {
        const cur = draft.sandboxes[sb.id]!;
        const e = this.newEndpoint(draft, n, cur, { ...(ip ? { ip } : {}), ...(req.ip6 ? { ip6: req.ip6 } : {}), aliases });
        cur.endpoints.push(e);
        return e;
      });
      const cur = this.state.sandboxes[sb.id]!;
      try {
        await this.joinEndpoint(cur, ep);
      } catch (e) {
        await this.drivers[n.driver]!.leave(n, cur, ep).catch(() => undefined);
        await this.transact((s) => {
          this.releaseEndpoint(s, ep);
          s.sandboxes[sb.id]!.endpoints = s.sandboxes[sb.id]!.endpoints.filter((x) => x.id !== ep.id);
        });
        throw e;
      }
      await this.writeFiles(cur);
      await this.refreshLinkers(cur);
      return ep;
    });
  }

  disconnect(netRef: string, sandboxRef: string): Promise<void> {
    return this.serial(async () => {
      const n = this.network(netRef);
      const sb = this.sandbox(sandboxRef);
      const ep = sb.endpoints.find((e) => e.network === n.id);
      if (!ep) throw notFound(`sandbox '${sb.name}' is not connected to network '${n.name}'`);
      const wasGateway = this.gatewayEndpoint(sb)?.id === ep.id;
      await this.transact((s) => {
        this.releaseEndpoint(s, ep);
        s.sandboxes[sb.id]!.endpoints = s.sandboxes[sb.id]!.endpoints.filter((x) => x.id !== ep.id);
      });
      await this.drivers[n.driver]!.leave(n, sb, ep);
      const cur = this.state.sandboxes[sb.id]!;
      const next = this.gatewayEndpoint(cur);
      if (wasGateway && next) await this.joinEndpoint(cur, next).catch(async () => {
        // The interface exists: only its default routes need to move.
        const nn = this.state.networks[next.network]!;
        for (const pool of nn.pools) await nl.routeReplace({ netns: cur.netnsPath, dst: 'default', via: pool.gateway, dev: next.ifname });
      });
      await this.writeFiles(cur);
      await this.refreshLinkers(cur);
    });
  }

  /** The sandbox's command output from byte @offset on. */
  async output(sb: SandboxRecord, offset: number): Promise<{ text: string; next: number }> {
    const fh = await open(join(this.sandboxDir(sb.id), 'output.log'), 'r').catch(() => undefined);
    if (!fh) return { text: '', next: offset };
    try {
      const { size } = await fh.stat();
      const len = Math.max(0, Math.min(size - offset, 1 << 20));
      const buf = Buffer.alloc(len);
      if (len) await fh.read(buf, 0, len, offset);
      return { text: buf.toString('utf8'), next: offset + len };
    } finally {
      await fh.close();
    }
  }

  status(sb: SandboxRecord): 'running' | 'exited' | 'created' {
    if (isRunning(sb.pid, sb.pidStart)) return 'running';
    return sb.pid ? 'exited' : 'created';
  }

  // ------------------------------------------------- other engines (Docker)
  //
  // Docker's remote driver protocol: Docker owns the container's namespace and
  // moves the interface into it itself. berth keeps a network record per
  // Docker network and an 'external' sandbox record per Docker endpoint (key:
  // Docker's EndpointID), so the datapath (ports, ICC, isolation, NAT) and
  // reconcile see them like any other. Every call is idempotent: Docker
  // re-sends calls after its own restart.

  /** The network made for another engine's network @extId, if any. */
  externalNetwork(extId: string): NetworkRecord | undefined {
    return Object.values(this.state.networks).find((n) => n.external?.id === extId);
  }

  externalEndpoint(epId: string): SandboxRecord | undefined {
    const sb = this.state.sandboxes[epId];
    return sb?.mode === 'external' ? sb : undefined;
  }

  /** IPAM for another engine: a pool of @subnet (or a free one), refusing overlaps as Docker's own IPAM does. */
  ipamRequestPool(req: { addressSpace: string; pool?: string; subPool?: string; v6: boolean }): Promise<IpamPoolRecord> {
    return this.serial(async () => {
      let subnet: string;
      if (req.pool) {
        const p = parsePrefix(req.pool, 'pool');
        if (req.v6 !== (p.family === 6)) throw badRequest(`pool ${req.pool} is not an IPv${req.v6 ? 6 : 4} subnet`);
        await this.checkSubnetFree(p);
        for (const other of Object.values(this.state.ipamPools ?? {})) {
          if (overlaps(p, parsePrefix(other.subnet))) throw conflict(`pool ${p.text} overlaps pool ${other.subnet} (${other.id}) already handed out`);
        }
        subnet = p.text;
      } else {
        subnet = req.v6 ? this.autoSubnet6() : await this.autoSubnet4();
      }
      const pool = makePool({ subnet, ...(req.subPool ? { ipRange: req.subPool } : {}) });
      const id = `berth-${randomBytes(8).toString('hex')}`;
      const rec: IpamPoolRecord = { ...pool, id, addressSpace: req.addressSpace };
      await this.transact((s) => {
        (s.ipamPools ??= {})[id] = rec;
      });
      this.log.info({ pool: id, subnet }, 'ipam pool handed out');
      return rec;
    });
  }

  ipamPool(id: string): IpamPoolRecord {
    const p = this.state.ipamPools?.[id];
    if (!p) throw notFound(`address pool '${id}' not found`);
    return p;
  }

  /** Releasing an unknown pool succeeds: Docker may repeat the call. */
  ipamReleasePool(id: string): Promise<void> {
    return this.serial(async () => {
      if (!this.state.ipamPools?.[id]) return;
      await this.transact((s) => {
        delete s.ipamPools![id];
      });
    });
  }

  /** An address of pool @id with its prefix length: the gateway when @gateway (@addr then moves it), else @addr or the next free one. */
  ipamRequestAddress(id: string, addr: string | undefined, gateway: boolean): Promise<string> {
    return this.serial(async () => {
      const pool = this.ipamPool(id);
      const bits = parsePrefix(pool.subnet).bits;
      const out = await this.transact((s) => {
        const p = s.ipamPools![id]!;
        if (gateway) {
          if (addr) {
            const a = parseIp(addr, 'gateway');
            if (!overlaps(parsePrefix(`${a.text}/${a.family === 4 ? 32 : 128}`), parsePrefix(p.subnet))) throw badRequest(`gateway ${addr} is not in pool ${p.subnet}`);
            if (a.text !== p.gateway && p.allocated.includes(a.text)) throw conflict(`address ${a.text} is already in use in ${p.subnet}`);
            p.gateway = a.text;
          }
          return p.gateway;
        }
        return allocate(p, addr);
      });
      return `${out}/${bits}`;
    });
  }

  /** Releasing an address not held (or of an unknown pool) succeeds: Docker may repeat the call. */
  ipamReleaseAddress(id: string, addr: string): Promise<void> {
    return this.serial(async () => {
      const pool = this.state.ipamPools?.[id];
      if (!pool) return;
      const a = parseIp(addr.split('/')[0]!, 'address').text;
      if (!pool.allocated.includes(a)) return;
      await this.transact((s) => release(s.ipamPools![id]!, a));
    });
  }

  /** A bridge network for another engine's network @extId; a repeated call returns the existing one. */
  createExternalNetwork(req: {
    extId: string;
    name: string;
    internal: boolean;
    ipv6: boolean;
    options: Record<string, string>;
    pools: { subnet: string; gateway?: string; aux: Record<string, string> }[];
  }): Promise<NetworkRecord> {
    return this.serial(async () => {
      const existing = this.externalNetwork(req.extId);
      if (existing) return existing;
      if (Object.values(this.state.networks).some((n) => n.name === req.name)) throw conflict(`network '${req.name}' already exists`);
      const options = validateOptions('bridge', req.options);
      const byFamily = new Map<Family, PoolRecord>();
      for (const p of req.pools) {
        const pool = makePool({ subnet: p.subnet, ...(p.gateway ? { gateway: p.gateway } : {}), aux: p.aux });
        if (byFamily.has(pool.family)) throw badRequest(`two IPv${pool.family} pools given (${byFamily.get(pool.family)!.subnet} and ${pool.subnet}): berth takes one per family`);
        await this.checkSubnetFree(parsePrefix(pool.subnet));
        byFamily.set(pool.family, pool);
      }
      if (!byFamily.has(4)) throw badRequest('the network has no IPv4 pool');
      const id = randomBytes(32).toString('hex');
      const bridge = `bb-${id.slice(0, 12)}`;
      const rec: NetworkRecord = {
        id, name: req.name, driver: 'bridge', internal: req.internal, ipv6: req.ipv6 || byFamily.has(6), options, pools: [...byFamily.values()],
        bridge, isDefault: false, created: new Date().toISOString(), external: { engine: 'docker', id: req.extId },
      };
      await this.adoptNetwork(rec);
      this.log.info({ network: rec.name, id: shortId(id), external: req.extId, subnets: rec.pools.map((p) => p.subnet) }, 'network created for docker');
      return rec;
    });
  }

  /** Removes the network of @extId; an unknown one is already gone. */
  removeExternalNetwork(extId: string): Promise<void> {
    return this.serial(async () => {
      const n = this.externalNetwork(extId);
      if (n) await this.removeNetworkNow(n.id, true);
    });
  }

  /**
   * Records endpoint @epId of another engine on network @extId: its
   * addresses (as that engine's IPAM gave them, or from the network's pool)
   * and MAC. Nothing in the kernel yet: the veth is made on join.
   */
  createExternalEndpoint(req: { extId: string; epId: string; v4?: string; v6?: string; mac?: string }): Promise<SandboxRecord> {
    return this.serial(async () => {
      if (!/^[0-9a-f]{12,}$/.test(req.epId)) throw badRequest(`invalid endpoint id '${req.epId}'`);
      const n = this.externalNetwork(req.extId);
      if (!n) throw notFound(`network '${req.extId}' is not known to berth`);
      const have = this.externalEndpoint(req.epId);
      if (have) return have;
      const v4 = req.v4 ? parseIp(req.v4, 'address').text : undefined;
      const v6 = req.v6 ? parseIp(req.v6, 'IPv6 address').text : undefined;
      if (req.mac && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(req.mac)) throw badRequest(`invalid MAC address '${req.mac}'`);
      const eid = req.epId;
      return this.transact((draft) => {
        const net = draft.networks[n.id]!;
        // Addresses from the network's own pool only when the engine's IPAM gave none.
        const a4 = v4 ?? (poolFor(net.pools, 4) ? allocate(poolFor(net.pools, 4)!) : undefined);
        const a6 = v6 ?? (net.ipv6 && poolFor(net.pools, 6) ? allocate(poolFor(net.pools, 6)!) : undefined);
        const ep: EndpointRecord = {
          id: eid, network: n.id, ifname: 'eth0', hostIf: this.hostIfName(eid), mac: (req.mac ?? this.macFor(a4)).toLowerCase(),
          ...(a4 ? { v4: a4 } : {}), ...(a6 ? { v6: a6 } : {}), aliases: [],
        };
        const rec: SandboxRecord = {
          id: eid, name: `docker-${eid.slice(0, 12)}`, created: new Date().toISOString(), mode: 'external', netnsPath: '',
          hostname: eid.slice(0, 12), dns: [], dnsSearch: [], addHosts: [], env: [], links: [], expose: [], publish: [], publishAll: false,
          publishAllow: [], endpoints: [ep], cmd: [], external: { engine: 'docker', peer: `bd${eid.slice(0, 12)}` },
        };
        draft.sandboxes[eid] = rec;
        return rec;
      });
    });
  }

  /** Makes endpoint @epId's veth; the engine moves the returned peer into its namespace. Idempotent. */
  joinExternal(epId: string, sandboxKey: string): Promise<{ peer: string; network: NetworkRecord; ep: EndpointRecord }> {
    return this.serial(async () => {
      const sb = this.externalEndpoint(epId);
      if (!sb) throw notFound(`endpoint '${epId}' is not known to berth`);
      const ep = sb.endpoints[0]!;
      const n = this.state.networks[ep.network]!;
      const peer = sb.external!.peer;
      const links = await nl.linkList({});
      const hostUp = links.some((l) => l.name === ep.hostIf);
      const peerHere = links.some((l) => l.name === peer);
      if (!(hostUp && peerHere)) {
        // A half-made pair, or one whose peer went into an earlier sandbox: make it anew.
        await nl.linkDel({ name: ep.hostIf! }).catch(() => undefined);
        await nl.linkDel({ name: peer }).catch(() => undefined);
        try {
          await nl.linkAddVeth({ name: ep.hostIf!, peerName: peer, mtu: mtuOf(n), peerMac: ep.mac });
          await nl.linkSet({ name: ep.hostIf!, master: n.bridge!, up: true });
        } catch (e) {
          await nl.linkDel({ name: ep.hostIf! }).catch(() => undefined);
          throw e;
        }
      }
      await this.transact((s) => {
        s.sandboxes[epId]!.external!.sandboxKey = sandboxKey;
      });
      // A new veth is a new interface to the datapath (the bpf one attaches to it), though the desired state is the same.
      if (!(hostUp && peerHere)) await this.syncDatapath(true);
      return { peer, network: n, ep };
    });
  }

  /** The engine took endpoint @epId out of its sandbox; the veth goes with the endpoint. */
  leaveExternal(epId: string): Promise<void> {
    return this.serial(async () => {
      const sb = this.externalEndpoint(epId);
      if (!sb?.external?.sandboxKey) return;
      await this.transact((s) => {
        delete s.sandboxes[epId]!.external!.sandboxKey;
      });
    });
  }

  /** Removes endpoint @epId: its record, addresses, published ports and veth. An unknown one is already gone. */
  deleteExternalEndpoint(epId: string): Promise<void> {
    return this.serial(async () => {
      const sb = this.externalEndpoint(epId);
      if (!sb) return;
      await this.transact((s) => {
        for (const ep of sb.endpoints) this.releaseEndpoint(s, ep);
        delete s.sandboxes[epId];
      });
      await this.destroySandbox(sb);
    });
  }

  /** Published and exposed ports of endpoint @epId, replacing what it had (an empty list revokes them). */
  setExternalPorts(epId: string, publish: PortSpec[], expose: PortProto[]): Promise<PublishRecord[]> {
    return this.serial(async () => {
      const sb = this.externalEndpoint(epId);
      if (!sb) throw notFound(`endpoint '${epId}' is not known to berth`);
      return this.transact((draft) => {
        const rec = draft.sandboxes[epId]!;
        rec.publish = [];
        rec.publish = this.allocatePublishes(publish, false, [], epId, draft);
        rec.expose = expose;
        return rec.publish;
      });
    });
  }

  // ------------------------------------------- global networks (cluster)
  //
  // An overlay network lives in the cluster store; every host mirrors it into
  // its own state as a network of scope 'global' and makes it in its kernel.
  // Its addresses are allocated in the store. This host's endpoints are
  // written there after every change (syncCluster), and other hosts'
  // endpoints come back through the watch into the overlay dataplane.

  private clusterOrFail(what: string): Cluster {
    const c = this.opts.cluster;
    if (!c) throw badRequest(`${what}: overlay networks need a cluster store: start berthd with --store etcd://HOST:PORT`);
    return c;
  }

  private async clusterAllocate(n: NetworkRecord, owner: string, requested?: string): Promise<string | undefined> {
    const pool = poolFor(n.pools, 4);
    if (!pool) return undefined;
    if (requested && familyOf(requested) !== 4) throw badRequest(`--ip ${requested} is not an IPv4 address`);
    return this.clusterOrFail(`network '${n.name}'`).allocate(n.id, pool, owner, requested);
  }

  /** The local record of global network @g: the cluster's definition plus this host's bridge and MTU. */
  private localOverlay(g: { id: string; name: string; internal: boolean; options: Record<string, string>; pools: Omit<PoolRecord, 'allocated' | 'last'>[]; vxlan: { vni: number; port: number }; created: string }): NetworkRecord {
    const mtu = g.options.mtu ?? String((this.opts.underlayMtu ?? 1500) - 50);
    return {
      id: g.id, name: g.name, driver: 'overlay', scope: 'global', internal: g.internal, ipv6: false,
      options: { ...g.options, mtu }, pools: g.pools.map((p) => ({ ...p, aux: { ...p.aux }, allocated: [] })),
      bridge: `bb-${g.id.slice(0, 12)}`, vxlan: g.vxlan, isDefault: false, created: g.created,
    };
  }

  private async createOverlayNow(req: CreateNetworkRequest, name: string): Promise<NetworkRecord> {
    const cluster = this.clusterOrFail(`network '${name}'`);
    const options = validateOptions('overlay', req.options ?? {});
    if (optBool(req.ipv6, 'ipv6')) throw badRequest('overlay networks carry IPv4 only in this version: drop --ipv6');
    const internal = optBool(req.internal, 'internal');
    const subnets = strings(req.subnets, 'subnets');
    if (subnets.length > 1) throw badRequest(`overlay networks take one IPv4 subnet (${subnets.join(', ')} given)`);
    const gateways = strings(req.gateways, 'gateways');
    const ranges = strings(req.ipRanges, 'ip-ranges');
    const used = [...this.usedPrefixes(), ...cluster.networks().flatMap((g) => g.pools.map((p) => parsePrefix(p.subnet)))];
    let subnet: Prefix;
    if (subnets[0]) {
      subnet = parsePrefix(subnets[0], 'subnet');
      if (subnet.family !== 4) throw badRequest(`overlay subnet ${subnet.text} is not IPv4`);
      await this.checkSubnetFree(subnet);
      const clash = cluster.networks().find((g) => g.pools.some((p) => overlaps(subnet, parsePrefix(p.subnet))));
      if (clash) throw conflict(`subnet ${subnet.text} overlaps ${clash.pools[0]!.subnet} of overlay network '${clash.name}'`);
    } else {
      // Docker's overlay pool: the first free 10.0.N.0/24.
      const routes = (await this.hostRoutes()).map((r) => r.prefix);
      const free = Array.from({ length: 256 }, (_, i) => parsePrefix(`10.0.${i}.0/24`)).find((c) => ![...used, ...routes].some((u) => overlaps(c, u)));
      if (!free) throw conflict('no free overlay subnet left in 10.0.0.0/16: give one with --subnet');
      subnet = free;
    }
    const pool = makePool({ subnet: subnet.text, ...(gateways[0] ? { gateway: gateways[0] } : {}), ...(ranges[0] ? { ipRange: ranges[0] } : {}), aux: req.auxAddresses ?? {} });
    const vnis = new Set(cluster.networks().map((g) => g.vxlan.vni));
    let vni = options['vxlan.id'] ? Number(options['vxlan.id']) : 4096;
    if (options['vxlan.id'] && vnis.has(vni)) throw conflict(`VXLAN id ${vni} is used by another overlay network of the cluster: pick another with -o vxlan.id=N`);
    while (vnis.has(vni)) vni++;
    const port = Number(options['vxlan.port'] ?? 4789);
    const id = randomBytes(32).toString('hex');
    const created = new Date().toISOString();
    const { 'vxlan.id': _id, 'vxlan.port': _port, ...rest } = options;
    const rec = this.localOverlay({ id, name, internal, options: rest, pools: [pool], vxlan: { vni, port }, created });
    // The cluster first: it decides whether the name and VNI are free everywhere.
    await cluster.createNetwork({ ...rec, options: rest });
    await this.adoptNetwork(rec).catch(async (e: unknown) => {
      await cluster.deleteNetwork(rec).catch(() => undefined);
      throw e;
    });
    this.log.info({ network: name, id: shortId(id), subnet: subnet.text, vni, port }, 'overlay network created');
    return this.state.networks[id]!;
  }

  /** Records network @rec and makes it on this host with its driver; undoes both if making it fails. */
  private async adoptNetwork(rec: NetworkRecord): Promise<void> {
    const d = this.drivers[rec.driver]!;
    await this.transact((s) => {
      s.networks[rec.id] = rec;
    });
    try {
      await d.createNetwork(rec);
      await this.opts.events?.networkUp?.(rec);
    } catch (e) {
      await d.deleteNetwork(rec).catch(() => undefined);
      await this.transact((s) => {
        delete s.networks[rec.id];
      });
      throw e;
    }
  }

  /** Follows the cluster: global networks appear and vanish here, other hosts' endpoints reach the dataplane. */
  private async followCluster(): Promise<void> {
    const cluster = this.opts.cluster;
    if (!cluster) return;
    const global = cluster.networks();
    for (const g of global) {
      if (this.state.networks[g.id]) continue;
      const clash = Object.values(this.state.networks).find((n) => n.name === g.name);
      if (clash) {
        this.log.error({ network: g.name }, 'a global network has the name of a local network here: not joined');
        continue;
      }
      await this.adoptNetwork(this.localOverlay(g)).then(
        () => this.log.info({ network: g.name, id: shortId(g.id), vni: g.vxlan.vni }, 'global network joined'),
        (e: unknown) => this.log.error({ err: e, network: g.name }, 'could not make a global network here'),
      );
    }
    if (cluster.connected) {
      const ids = new Set(global.map((g) => g.id));
      for (const n of Object.values(this.state.networks)) {
        if (n.scope !== 'global' || ids.has(n.id) || this.membersOf(n).length) continue;
        await this.transact((s) => {
          delete s.networks[n.id];
        });
        await this.opts.events?.networkDown?.(n);
        await this.drivers.overlay!.deleteNetwork(n).catch(() => undefined);
        this.log.info({ network: n.name }, 'global network removed by the cluster');
      }
    }
    await this.syncRemote();
  }

  private async syncRemote(): Promise<void> {
    const { cluster, overlay } = this.opts;
    // While the store is unreachable the maps keep the last known state.
    if (!cluster || !overlay || !cluster.connected) return;
    const vniOf = (id: string) => this.state.networks[id]?.vxlan?.vni;
    await overlay.syncRemote(cluster.peerAddresses(), cluster.remoteEndpoints(vniOf));
  }

  private clusterDirty = false;

  /** Publishes this host's endpoints; while the store is down, marks it for the retry timer. */
  private async syncCluster(): Promise<void> {
    const cluster = this.opts.cluster;
    if (!cluster) return;
    if (!cluster.connected) {
      // Not worth a timeout per operation: the retry timer writes it all once the store is back.
      this.clusterDirty = true;
      return;
    }
    try {
      await cluster.syncLocal(this.state);
      this.clusterDirty = false;
    } catch (e) {
      if (!this.clusterDirty) this.log.warn({ err: (e as Error).message }, 'cluster store not updated; retrying while it is unreachable');
      this.clusterDirty = true;
    }
  }

  private watchCluster(): void {
    const cluster = this.opts.cluster;
    if (!cluster) return;
    const follow = () => {
      this.serial(() => this.followCluster()).catch((e: unknown) => this.log.error({ err: e }, 'following the cluster failed'));
    };
    cluster.on('changed', follow);
    cluster.on('connected', follow);
    // What the cluster holds already (networks made while this berthd was down) is followed now.
    follow();
    const retry = setInterval(() => {
      if (this.clusterDirty && cluster.connected) this.serial(async () => undefined).catch(() => undefined);
    }, 2000);
    retry.unref();
  }

  /** Global network state for `berth network inspect`-style views: hosts and endpoints of the cluster. */
  clusterView(): { hosts: { id: string; name: string; underlay: string }[]; connected: boolean } | undefined {
    const c = this.opts.cluster;
    return c ? { hosts: c.hosts().map((h) => ({ id: h.id, name: h.name, underlay: h.underlay })), connected: c.connected } : undefined;
  }

  // -------------------------------------------------------------- reconcile

  /**
   * Replays the store over the kernel. Creates missing bridges, namespaces and
   * endpoints; removes berth's own leftovers (bridges bb-*, veths bv*,
   * namespaces berth-<instance>-*) that the store no longer has.
   */
  reconcile(): Promise<{ created: string[]; removed: string[] }> {
    return this.serial(async () => {
      const created: string[] = [];
      const removed: string[] = [];
      for (const n of Object.values(this.state.networks)) {
        await this.drivers[n.driver]!.createNetwork(n);
      }
      for (const sb of Object.values(this.state.sandboxes)) {
        if (sb.mode === 'external') continue;
        if (sb.mode === 'networks' || sb.mode === 'none') {
          if (!(await nsExists(sb.netnsPath))) created.push(`netns ${sb.netnsPath}`);
        }
        for (const ep of sb.endpoints) {
          const n = this.state.networks[ep.network];
          if (n && !(await this.drivers[n.driver]!.endpointPresent(n, sb, ep).catch(() => false))) created.push(`endpoint ${sb.name}/${ep.ifname}`);
        }
        await this.realizeSandbox(sb);
        // Files are written once: host resolv.conf changes reach a sandbox only when it is made anew, as in Docker.
        if (!(await exists(filesIn(this.sandboxDir(sb.id)).resolvConf))) await this.writeFiles(sb);
      }
      const bridges = new Set(Object.values(this.state.networks).map((n) => n.bridge));
      const hostIfs = new Set(Object.values(this.state.sandboxes).flatMap((s) => s.endpoints.map((e) => e.hostIf)));
      for (const l of await nl.linkList({})) {
        if ((/^bb-[0-9a-f]{12}$/.test(l.name) && !bridges.has(l.name)) || (/^bv[0-9a-f]{12}$/.test(l.name) && !hostIfs.has(l.name))) {
          await nl.linkDel({ name: l.name });
          removed.push(`link ${l.name}`);
        }
      }
      const paths = new Set(Object.values(this.state.sandboxes).map((s) => s.netnsPath));
      const prefix = `berth-${this.state.instance}-`;
      for (const f of await listDir(NETNS_DIR)) {
        const p = `${NETNS_DIR}/${f}`;
        if (f.startsWith(prefix) && !paths.has(p)) {
          await nl.netnsDelete(p);
          removed.push(`netns ${p}`);
        }
      }
      for (const n of Object.values(this.state.networks)) await this.opts.events?.networkUp?.(n);
      await this.opts.overlay?.sweep();
      this.applied = ''; // on start the kernel may hold anything: apply in full
      this.log.info({ created, removed }, 'reconciled');
      return { created, removed };
    });
  }
}


async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const NSFS_MAGIC = 0x6e736673;

/** A namespace file is alive only while a namespace is mounted on it (after a reboot the file may linger). */
async function nsExists(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
