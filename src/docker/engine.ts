/**
 * Docker's remote-driver and IPAM calls as operations on berth's controller.
 * Docker owns the container's namespace and moves the interface into it
 * itself. berth keeps a network record per Docker network and an 'external'
 * sandbox record per Docker endpoint (key: Docker's EndpointID), so the
 * datapath (ports, ICC, isolation, NAT) and reconcile see them like any
 * other. Every call is idempotent: Docker re-sends calls after its own restart.
 */
import { randomBytes } from 'node:crypto';
import { badRequest, conflict, notFound } from '../errors.js';
import { overlaps, parseIp, parsePrefix, type Family } from '../ipam/addr.js';
import { allocate, makePool, poolFor, release } from '../ipam/ipam.js';
import type { EndpointRecord, IpamPoolRecord, NetworkRecord, PoolRecord, PortProto, PublishRecord, SandboxRecord, State } from '../store/model.js';
import type { Controller } from '../controller/controller.js';
import type { Core } from '../controller/core.js';
import type { PortSpec } from '../controller/portspec.js';
import { validateOptions } from '../controller/options.js';
import { shortId } from '../controller/names.js';
import { checkName } from '../controller/requests.js';
import { autoSubnet4, autoSubnet6, checkSubnetFree } from '../controller/addressing.js';
import { adoptNetwork, removeNetwork } from '../controller/networks.js';
import { macFor, releaseEndpoint } from '../controller/endpoints.js';
import { allocatePublishes } from '../controller/publish.js';
import { destroySandbox } from '../controller/sandboxes.js';
import { hostIfName } from '../drivers/bridge.js';

const external = (state: State, epId: string): SandboxRecord | undefined => {
  const sb = state.sandboxes[epId];
  return sb?.mode === 'external' ? sb : undefined;
};

const networkOf = (state: State, extId: string): NetworkRecord | undefined => Object.values(state.networks).find((n) => n.external?.id === extId);

export class DockerEngine {
  constructor(private readonly c: Controller) {}

  snapshot(): State {
    return this.c.snapshot();
  }

  /** The network made for Docker's network @extId, if any. */
  externalNetwork(extId: string): NetworkRecord | undefined {
    return networkOf(this.c.snapshot(), extId);
  }

  externalEndpoint(epId: string): SandboxRecord | undefined {
    return external(this.c.snapshot(), epId);
  }

  /** IPAM for Docker: a pool of @subnet (or a free one), refusing overlaps as Docker's own IPAM does. */
  ipamRequestPool(req: { addressSpace: string; pool?: string; subPool?: string; v6: boolean }): Promise<IpamPoolRecord> {
    return this.c.exclusive(async (core) => {
      let subnet: string;
      if (req.pool) {
        const p = parsePrefix(req.pool, 'pool');
        if (req.v6 !== (p.family === 6)) throw badRequest(`pool ${req.pool} is not an IPv${req.v6 ? 6 : 4} subnet`);
        await checkSubnetFree(core, p);
        for (const other of Object.values(core.state.ipamPools ?? {})) {
          if (overlaps(p, parsePrefix(other.subnet))) throw conflict(`pool ${p.text} overlaps pool ${other.subnet} (${other.id}) already handed out`);
        }
        subnet = p.text;
      } else {
        subnet = req.v6 ? autoSubnet6(core) : await autoSubnet4(core);
      }
      const pool = makePool({ subnet, ...(req.subPool ? { ipRange: req.subPool } : {}) });
      const id = `berth-${randomBytes(8).toString('hex')}`;
      const rec: IpamPoolRecord = { ...pool, id, addressSpace: req.addressSpace };
      await core.commit((s) => {
        (s.ipamPools ??= {})[id] = rec;
      });
      core.log.info({ pool: id, subnet }, 'ipam pool handed out');
      return rec;
    });
  }

  /** Releasing an unknown pool succeeds: Docker may repeat the call. */
  ipamReleasePool(id: string): Promise<void> {
    return this.c.exclusive(async (core) => {
      if (!core.state.ipamPools?.[id]) return;
      await core.commit((s) => {
        delete s.ipamPools![id];
      });
    });
  }

  /** An address of pool @id with its prefix length: the gateway when @gateway (@addr then moves it), else @addr or the next free one. */
  ipamRequestAddress(id: string, addr: string | undefined, gateway: boolean): Promise<string> {
    return this.c.exclusive(async (core) => {
      const pool = core.state.ipamPools?.[id];
      if (!pool) throw notFound(`address pool '${id}' not found`);
      const bits = parsePrefix(pool.subnet).bits;
      const out = await core.commit((s) => {
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
    return this.c.exclusive(async (core) => {
      const pool = core.state.ipamPools?.[id];
      if (!pool) return;
      const a = parseIp(addr.split('/')[0]!, 'address').text;
      if (!pool.allocated.includes(a)) return;
      await core.commit((s) => release(s.ipamPools![id]!, a));
    });
  }

  /** A bridge network for Docker's network @extId; a repeated call returns the existing one. */
  createExternalNetwork(req: {
    extId: string;
    name: string;
    internal: boolean;
    ipv6: boolean;
    options: Record<string, string>;
    pools: { subnet: string; gateway?: string; aux: Record<string, string> }[];
  }): Promise<NetworkRecord> {
    return this.c.exclusive(async (core) => {
      const existing = networkOf(core.state, req.extId);
      if (existing) return existing;
      if (Object.values(core.state.networks).some((n) => n.name === req.name)) throw conflict(`network '${req.name}' already exists`);
      const options = validateOptions('bridge', req.options);
      const byFamily = new Map<Family, PoolRecord>();
      for (const p of req.pools) {
        const pool = makePool({ subnet: p.subnet, ...(p.gateway ? { gateway: p.gateway } : {}), aux: p.aux });
        if (byFamily.has(pool.family)) throw badRequest(`two IPv${pool.family} pools given (${byFamily.get(pool.family)!.subnet} and ${pool.subnet}): berth takes one per family`);
        await checkSubnetFree(core, parsePrefix(pool.subnet));
        byFamily.set(pool.family, pool);
      }
      if (!byFamily.has(4)) throw badRequest('the network has no IPv4 pool');
      const id = randomBytes(32).toString('hex');
      const rec: NetworkRecord = {
        id, name: req.name, driver: 'bridge', internal: req.internal, ipv6: req.ipv6 || byFamily.has(6), options, pools: [...byFamily.values()],
        bridge: `bb-${id.slice(0, 12)}`, isDefault: false, created: new Date().toISOString(), external: { engine: 'docker', id: req.extId },
      };
      await adoptNetwork(core, rec);
      core.log.info({ network: rec.name, id: shortId(id), external: req.extId, subnets: rec.pools.map((p) => p.subnet) }, 'network created for docker');
      return rec;
    });
  }

  /**
   * Removes the network of @extId; an unknown one is already gone. Docker
   * removes its network even when a driver refuses, so one that CNI
   * containers still share (cni-networks.ts) is handed to them instead: it
   * goes with their last attachment, as a network berth-cni made does.
   */
  removeExternalNetwork(extId: string): Promise<void> {
    return this.c.exclusive(async (core) => {
      const n = networkOf(core.state, extId);
      if (!n) return;
      const members = core.membersOf(n);
      if (members.length && members.every((m) => m.external?.engine === 'cni')) {
        await core.commit((s) => {
          const rec = s.networks[n.id]!;
          delete rec.external;
          rec.madeByCni = true;
        });
        core.log.info({ network: n.name, attachments: members.map((m) => m.name) }, 'docker removed the network: left to its CNI attachments');
        return;
      }
      await removeNetwork(core, n.id, true);
    });
  }

  /**
   * Records endpoint @epId of Docker's network @extId: its addresses (as
   * Docker's IPAM gave them, or from the network's pool) and MAC. Nothing in
   * the kernel yet: the veth is made on join.
   */
  createExternalEndpoint(req: { extId: string; epId: string; v4?: string; v6?: string; mac?: string; aliases?: string[] }): Promise<SandboxRecord> {
    return this.c.exclusive(async (core) => {
      if (!/^[0-9a-f]{12,}$/.test(req.epId)) throw badRequest(`invalid endpoint id '${req.epId}'`);
      const n = networkOf(core.state, req.extId);
      if (!n) throw notFound(`network '${req.extId}' is not known to berth`);
      const have = external(core.state, req.epId);
      if (have) return have;
      const v4 = req.v4 ? parseIp(req.v4, 'address').text : undefined;
      const v6 = req.v6 ? parseIp(req.v6, 'IPv6 address').text : undefined;
      if (req.mac && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(req.mac)) throw badRequest(`invalid MAC address '${req.mac}'`);
      const aliases = [...new Set(req.aliases ?? [])];
      for (const a of aliases) checkName(a, 'berth.aliases');
      const eid = req.epId;
      return core.commit((draft) => {
        const net = draft.networks[n.id]!;
        // Addresses from the network's own pool only when Docker's IPAM gave none.
        const a4 = v4 ?? (poolFor(net.pools, 4) ? allocate(poolFor(net.pools, 4)!) : undefined);
        const a6 = v6 ?? (net.ipv6 && poolFor(net.pools, 6) ? allocate(poolFor(net.pools, 6)!) : undefined);
        const ep: EndpointRecord = {
          id: eid, network: n.id, ifname: 'eth0', hostIf: hostIfName(eid), mac: (req.mac ?? macFor(a4)).toLowerCase(),
          ...(a4 ? { v4: a4 } : {}), ...(a6 ? { v6: a6 } : {}), aliases,
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

  /** Makes endpoint @epId's veth; Docker moves the returned peer into its namespace. Idempotent. */
  joinExternal(epId: string, sandboxKey: string): Promise<{ peer: string; network: NetworkRecord; ep: EndpointRecord }> {
    return this.c.exclusive(async (core) => {
      const sb = this.known(core, epId);
      const ep = sb.endpoints[0]!;
      const n = core.state.networks[ep.network]!;
      const peer = sb.external!.peer;
      // A new veth is a new interface to the datapath (the bpf one attaches to it), though the desired state is the same.
      if (await core.bridge.joinExternal(n, ep, peer)) core.reapply = true;
      await core.commit((s) => {
        s.sandboxes[epId]!.external!.sandboxKey = sandboxKey;
      });
      return { peer, network: n, ep };
    });
  }

  /** Docker took endpoint @epId out of its sandbox; the veth goes with the endpoint. */
  leaveExternal(epId: string): Promise<void> {
    return this.c.exclusive(async (core) => {
      const sb = external(core.state, epId);
      if (!sb?.external?.sandboxKey) return;
      await core.commit((s) => {
        delete s.sandboxes[epId]!.external!.sandboxKey;
      });
    });
  }

  /** Removes endpoint @epId: its record, addresses, published ports and veth. An unknown one is already gone. */
  deleteExternalEndpoint(epId: string): Promise<void> {
    return this.c.exclusive(async (core) => {
      const sb = external(core.state, epId);
      if (!sb) return;
      await core.commit((s) => {
        for (const ep of sb.endpoints) releaseEndpoint(s, ep);
        delete s.sandboxes[epId];
      });
      await destroySandbox(core, sb);
    });
  }

  /** Published and exposed ports of endpoint @epId, replacing what it had (an empty list revokes them). */
  setExternalPorts(epId: string, publish: PortSpec[], expose: PortProto[]): Promise<PublishRecord[]> {
    return this.c.exclusive(async (core) => {
      this.known(core, epId);
      return core.commit((draft) => {
        const rec = draft.sandboxes[epId]!;
        rec.publish = [];
        rec.publish = allocatePublishes(draft, epId, publish, false, [], core.opts.ports);
        rec.expose = expose;
        return rec.publish;
      });
    });
  }

  private known(core: Core, epId: string): SandboxRecord {
    const sb = external(core.state, epId);
    if (!sb) throw notFound(`endpoint '${epId}' is not known to berth`);
    return sb;
  }
}
