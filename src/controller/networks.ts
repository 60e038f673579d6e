/**
 * Networks: created from a request (subnets checked against the address
 * space, pools made, a bridge name chosen), adopted (recorded, then made by
 * their driver; both undone if making fails), removed and pruned. Global
 * (overlay) networks are created through the global scope (scope.ts).
 */
import { randomBytes } from 'node:crypto';
import { badRequest, conflict } from '../errors.js';
import { familyOf, parsePrefix, type Family, type Prefix } from '../ipam/addr.js';
import { makePool } from '../ipam/ipam.js';
import { interfaceExists } from '../drivers/host.js';
import type { NetworkRecord } from '../store/model.js';
import { checkName, optBool, strings, type CreateNetworkRequest } from './requests.js';
import { validateOptions } from './options.js';
import { shortId } from './names.js';
import { autoSubnet4, autoSubnet6, checkSubnetFree } from './addressing.js';
import { needsCluster } from './scope.js';
import { transaction } from './transaction.js';
import type { Core } from './core.js';

const BUILTIN_NETWORKS = ['bridge', 'host', 'none'] as const;

export async function ensureDefaultNetwork(core: Core): Promise<void> {
  if (Object.values(core.state.networks).some((n) => n.isDefault)) return;
  const cfg = core.opts.config;
  const pool = makePool({ subnet: cfg.defaultSubnet, ...(cfg.defaultGateway ? { gateway: cfg.defaultGateway } : {}), ...(cfg.defaultIpRange ? { ipRange: cfg.defaultIpRange } : {}) });
  const id = randomBytes(32).toString('hex');
  await core.commit((s) => {
    s.networks[id] = { id, name: 'bridge', driver: 'bridge', internal: false, ipv6: false, options: {}, pools: [pool], bridge: cfg.defaultBridge, isDefault: true, created: new Date().toISOString() };
  });
}

/** A network name the request may take: valid, not built in, not used. */
function freeNetworkName(core: Core, name: unknown): string {
  const n = checkName(name, 'network');
  if ((BUILTIN_NETWORKS as readonly string[]).includes(n)) throw conflict(`network name '${n}' is reserved for a built-in network`);
  if (Object.values(core.state.networks).some((x) => x.name === n)) throw conflict(`network '${n}' already exists`);
  return n;
}

export async function createNetwork(core: Core, req: CreateNetworkRequest): Promise<NetworkRecord> {
  const name = freeNetworkName(core, req?.name);
  const driver = req.driver ?? 'bridge';
  if (driver !== 'bridge' && driver !== 'macvlan' && driver !== 'overlay' && driver !== 'routed') throw badRequest(`unknown network driver '${driver}' (valid: bridge, macvlan, overlay, routed)`);
  if (driver === 'overlay' || driver === 'routed') {
    if (!core.global) throw needsCluster(`network '${name}'`);
    return core.global.createNetwork(core, req, name);
  }
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
    await checkSubnetFree(core, p, driver !== 'macvlan');
    byFamily.set(p.family, p);
  }
  if (byFamily.has(6) && !ipv6) throw badRequest(`IPv6 subnet ${byFamily.get(6)!.text} given without --ipv6`);
  if (!byFamily.has(4)) {
    if (driver === 'macvlan') throw badRequest('a macvlan network needs --subnet (the parent network\'s) and usually --gateway');
    byFamily.set(4, parsePrefix(await autoSubnet4(core)));
  }
  if (ipv6 && !byFamily.has(6)) byFamily.set(6, parsePrefix(autoSubnet6(core)));
  const fam = (ip: string, what: string): Family => {
    const f = familyOf(ip) ?? familyOf(ip.split('/')[0] ?? '');
    if (!f) throw badRequest(`invalid ${what} '${ip}'`);
    if (!byFamily.has(f)) throw badRequest(`${what} ${ip} has no IPv${f} subnet to belong to`);
    return f;
  };
  const pools = [...byFamily.entries()].map(([f, p]) => {
    const gateway = gateways.find((g) => fam(g, 'gateway') === f);
    const ipRange = ranges.find((r) => fam(r, 'ip-range') === f);
    return makePool({
      subnet: p.text,
      ...(gateway ? { gateway } : {}),
      ...(ipRange ? { ipRange } : {}),
      aux: Object.fromEntries(Object.entries(aux).filter(([, a]) => fam(a, 'aux-address') === f)),
    });
  });
  const id = randomBytes(32).toString('hex');
  let bridge: string | undefined;
  let parent: string | undefined;
  if (driver === 'bridge') {
    bridge = options['bridge.name'] ?? `bb-${id.slice(0, 12)}`;
    if (Object.values(core.state.networks).some((n) => n.bridge === bridge)) throw conflict(`bridge name '${bridge}' is used by another network`);
    if (await interfaceExists(bridge)) throw conflict(`an interface named '${bridge}' already exists on this host and is not berth's`);
  } else {
    parent = options.parent;
    if (!parent) throw badRequest('a macvlan network needs -o parent=IFACE');
  }
  const rec: NetworkRecord = { id, name, driver, internal, ipv6, options, pools, ...(bridge ? { bridge } : {}), ...(parent ? { parent } : {}), isDefault: false, created: new Date().toISOString() };
  await adoptNetwork(core, rec);
  core.log.info({ network: name, id: shortId(id), subnets: pools.map((p) => p.subnet) }, 'network created');
  return rec;
}

/** Records network @rec and makes it on this host with its driver; undoes both if making it fails. */
export async function adoptNetwork(core: Core, rec: NetworkRecord): Promise<void> {
  const d = core.driverOf(rec);
  await transaction(core, async (tx) => {
    await tx.record((s) => {
      s.networks[rec.id] = rec;
    }, (s) => {
      delete s.networks[rec.id];
    });
    tx.onUndo(() => d.deleteNetwork(rec));
    await d.createNetwork(rec);
    await core.opts.events?.networkUp?.(rec);
  });
}

/** Forgets network @n and takes it out of the kernel (members must be gone). */
export async function dropNetwork(core: Core, n: NetworkRecord): Promise<void> {
  await core.commit((s) => {
    delete s.networks[n.id];
  });
  await core.opts.events?.networkDown?.(n);
  await core.driverOf(n).deleteNetwork(n);
}

/** @byEngine: the engine that owns an external network removes it. */
export async function removeNetwork(core: Core, ref: string, byEngine = false): Promise<void> {
  if (ref === 'host' || ref === 'none') throw badRequest(`'${ref}' is a pre-defined network and cannot be removed`);
  const n = core.network(ref);
  if (n.external && !byEngine) throw badRequest(`network '${n.name}' belongs to ${n.external.engine}: remove it there (docker network rm)`);
  if (n.isDefault) throw badRequest(`'${n.name}' is a pre-defined network and cannot be removed`);
  const members = core.membersOf(n);
  if (members.length) {
    throw conflict(`network '${n.name}' has active endpoints (${members.map((m) => m.name).join(', ')}): disconnect or remove them first`);
  }
  // A global network goes from the cluster first: that fails while any host has endpoints on it, or the store is down.
  if (n.scope === 'global') {
    if (!core.global) throw needsCluster(n.name);
    await core.global.deleteNetwork(n);
  }
  await dropNetwork(core, n);
  core.log.info({ network: n.name }, 'network removed');
}

export async function pruneNetworks(core: Core): Promise<string[]> {
  const removed: string[] = [];
  for (const n of Object.values(core.state.networks)) {
    if (n.isDefault || n.external || core.membersOf(n).length) continue;
    await removeNetwork(core, n.id);
    removed.push(n.name);
  }
  return removed;
}
