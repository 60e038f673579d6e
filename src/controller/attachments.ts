/**
 * CNI attachments: a namespace a container runtime made, attached to a berth
 * network as an endpoint (berth-cni's ADD, CHECK, DEL and GC). The runtime
 * owns the namespace; berth makes the veth into it under the runtime's
 * interface name, gives it its address and routes, publishes its ports and
 * names it in the network's DNS. Each attachment is an 'external' sandbox
 * record keyed by (CNI network name, container id, interface name), as the
 * CNI spec keys plugin state, so that DEL and GC need nothing but that key.
 */
import { createHash } from 'node:crypto';
import { badRequest, conflict, notFound } from '../errors.js';
import { parseIp, parsePrefix } from '../ipam/addr.js';
import { poolFor } from '../ipam/ipam.js';
import { netnsExists } from '../drivers/netns.js';
import { hostIfName, mtuOf } from '../drivers/bridge.js';
import { nl } from '../netlink/index.js';
import type { CniAttachmentKey, EndpointRecord, PublishRecord, SandboxRecord, State } from '../store/model.js';
import { checkName } from './requests.js';
import { parseEgressList } from './egress.js';
import { parseProto, type PortSpec } from './portspec.js';
import { allocatePublishes } from './publish.js';
import { joinEndpoint, leaveEndpoint, newEndpoint, releaseEndpoint } from './endpoints.js';
import { ensureNetwork, parseSpec, releaseSharedAddresses, removeIfUnused, takeSharedAddresses } from './cni-networks.js';
import { transaction } from './transaction.js';
import type { Core } from './core.js';

import type { CniNetworkSpec } from './cni-networks.js';

export type { CniNetworkSpec };

export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
}

export interface AttachRequest extends CniAttachmentKey {
  /** CNI_NETNS: the namespace file the runtime made */
  netns: string;
  spec: CniNetworkSpec;
  portMappings?: CniPortMapping[];
  aliases?: string[];
  /** requested addresses (runtimeConfig.ips / args.cni.ips), with or without a prefix length */
  ips?: string[];
  mac?: string;
  egressAllow?: string[];
  /** berthd holds a socket on each published host port; default false: CNI runtimes hold their own (podman does) */
  holdPorts?: boolean;
}

/** What ADD reports, independent of the CNI version (berth-cni renders it). */
export interface AttachmentView {
  sandbox: string;
  network: string;
  netns: string;
  ifname: string;
  mac: string;
  hostIf: string;
  mtu: number;
  ips: { family: 4 | 6; address: string; gateway: string }[];
  routes: { dst: string; gw: string }[];
  /** the network's embedded DNS, when it has one */
  nameservers: string[];
  publish: PublishRecord[];
}

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Checks an attachment key as the CNI spec defines its parts; messages name the variable and its value. */
export function checkKey(k: Partial<CniAttachmentKey>): CniAttachmentKey {
  if (typeof k.network !== 'string' || !k.network) throw badRequest(`CNI network name '${String(k.network)}' is empty or not a string`);
  if (typeof k.containerId !== 'string' || !CONTAINER_ID_RE.test(k.containerId)) {
    throw badRequest(`CNI_CONTAINERID '${String(k.containerId)}' is invalid: it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`);
  }
  const ifn = k.ifname;
  if (typeof ifn !== 'string' || !ifn || ifn.length > 15 || ifn === '.' || ifn === '..' || /[/:\s]/.test(ifn)) {
    throw badRequest(`CNI_IFNAME '${String(ifn)}' is invalid: 1 to 15 characters, not '.' or '..', without '/', ':' or whitespace`);
  }
  return { network: k.network, containerId: k.containerId, ifname: ifn };
}

/** The sandbox (and endpoint) id of an attachment: derived from its key, so every verb finds it from the key alone. */
export function attachmentId(k: CniAttachmentKey): string {
  return createHash('sha256').update(`cni\0${k.network}\0${k.containerId}\0${k.ifname}`).digest('hex');
}

function attachmentOf(state: State, k: CniAttachmentKey): SandboxRecord | undefined {
  const sb = state.sandboxes[attachmentId(k)];
  return sb?.external?.engine === 'cni' ? sb : undefined;
}

/** The attachments of CNI network @network. */
function attachmentsOn(state: State, network: string): SandboxRecord[] {
  return Object.values(state.sandboxes).filter((s) => s.external?.engine === 'cni' && s.external.cni?.network === network);
}

export function attachmentView(state: State, sb: SandboxRecord): AttachmentView {
  const ep = sb.endpoints[0]!;
  const n = state.networks[ep.network]!;
  const ips: AttachmentView['ips'] = [];
  for (const [family, addr] of [[4, ep.v4], [6, ep.v6]] as const) {
    const pool = poolFor(n.pools, family);
    if (addr && pool) ips.push({ family, address: `${addr}/${parsePrefix(pool.subnet).bits}`, gateway: pool.gateway });
  }
  const routes = n.internal ? [] : ips.map((ip) => ({ dst: ip.family === 4 ? '0.0.0.0/0' : '::/0', gw: ip.gateway }));
  const hasDns = !n.isDefault && (n.driver === 'bridge' || n.driver === 'overlay');
  return {
    sandbox: sb.name, network: n.name, netns: sb.netnsPath, ifname: ep.ifname, mac: ep.mac, hostIf: ep.hostIf ?? '', mtu: mtuOf(n),
    ips, routes, nameservers: hasDns ? ips.filter((i) => i.family === 4).map((i) => i.gateway) : [], publish: sb.publish,
  };
}

// ------------------------------------------------------- the request

function portSpecs(raw: unknown): PortSpec[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badRequest(`runtimeConfig.portMappings: ${JSON.stringify(raw)} is not a list`);
  return raw.map((m: Record<string, unknown>, i) => {
    const at = `runtimeConfig.portMappings[${i}]`;
    const port = (k: string, zeroOk: boolean) => {
      const v = m?.[k];
      if (!Number.isInteger(v) || (v as number) < (zeroOk ? 0 : 1) || (v as number) > 65535) throw badRequest(`${at}.${k}: ${JSON.stringify(v)} is not a port from ${zeroOk ? 0 : 1} to 65535`);
      return v as number;
    };
    const hostPort = port('hostPort', true);
    const containerPort = port('containerPort', false);
    const proto = parseProto(String(m.protocol ?? 'tcp'), `${at}.protocol ${JSON.stringify(m.protocol)}`);
    const hostIp = m.hostIP === undefined || m.hostIP === '' ? '' : parseIp(String(m.hostIP), `${at}.hostIP`).text;
    return { hostIp: hostIp === '0.0.0.0' || hostIp === '::' ? '' : hostIp, hostPort, hostEnd: hostPort, containerPort, containerEnd: containerPort, proto };
  });
}

function requestedIps(raw: unknown): { ip?: string; ip6?: string } {
  if (raw === undefined || raw === null) return {};
  if (!Array.isArray(raw)) throw badRequest(`ips: ${JSON.stringify(raw)} is not a list of addresses`);
  const out: { ip?: string; ip6?: string } = {};
  for (const a of raw) {
    const ip = parseIp(String(a).split('/')[0]!, `requested address ${JSON.stringify(a)}`);
    const key = ip.family === 4 ? 'ip' : 'ip6';
    if (out[key]) throw badRequest(`ips: two IPv${ip.family} addresses requested (${out[key]} and ${ip.text}): berth gives one per family`);
    out[key] = ip.text;
  }
  return out;
}

function checkMac(raw: unknown): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const m = String(raw).toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m) || parseInt(m.slice(0, 2), 16) & 1) throw badRequest(`mac '${String(raw)}' is not a unicast MAC address (aa:bb:cc:dd:ee:ff)`);
  return m;
}

/** A sandbox name for the attachment: unique, readable in `berth ps`. */
function nameFor(state: State, k: CniAttachmentKey): string {
  const ifn = k.ifname.replace(/[^a-zA-Z0-9_.-]/g, '_');
  const base = `cni-${k.containerId.slice(0, 12)}-${ifn}`;
  const taken = (x: string) => Object.values(state.sandboxes).some((s) => s.name === x);
  if (!taken(base)) return base;
  return `${base}-${attachmentId(k).slice(0, 8)}`;
}

// ------------------------------------------------------- the verbs

/** ADD: validates all, then records and makes the attachment; a failure undoes all of it (a network made for it too). */
export async function attach(core: Core, req: AttachRequest): Promise<AttachmentView> {
  const key = checkKey(req ?? {});
  if (typeof req.netns !== 'string' || !req.netns.startsWith('/')) throw badRequest(`CNI_NETNS '${String(req.netns)}' is not an absolute path`);
  if (!(await netnsExists(req.netns))) throw notFound(`CNI_NETNS '${req.netns}' is not a network namespace (no such namespace is mounted there)`);
  const spec = parseSpec(req.spec);
  const publish = portSpecs(req.portMappings);
  const ips = requestedIps(req.ips);
  const mac = checkMac(req.mac);
  const aliases = [...new Set(Array.isArray(req.aliases) ? req.aliases : [])];
  for (const a of aliases) checkName(a, 'alias');
  const egressAllow = parseEgressList(Array.isArray(req.egressAllow) ? req.egressAllow : []);
  if (req.holdPorts !== undefined && typeof req.holdPorts !== 'boolean') throw badRequest(`"holdPorts": ${JSON.stringify(req.holdPorts)} is not true or false`);
  const hold = req.holdPorts === true;
  const id = attachmentId(key);

  const existing = attachmentOf(core.state, key);
  if (existing) {
    const ep = existing.endpoints[0]!;
    const n = core.state.networks[ep.network];
    // A repeated ADD (a runtime retrying after a crash) gets what is there, if it is all there; else it is made anew.
    if (n && existing.netnsPath === req.netns && (await core.driverOf(n).endpointPresent(n, existing, ep).catch(() => false))) return attachmentView(core.state, existing);
    await detachRecord(core, existing, true);
  }

  if ((await nl.linkList({ netns: req.netns })).some((l) => l.name === key.ifname)) {
    throw conflict(`CNI_IFNAME '${key.ifname}' exists already in CNI_NETNS '${req.netns}': berth makes the interface itself (run berth first in a chain)`);
  }
  const sb = await transaction(core, async (tx) => {
    const n = await ensureNetwork(core, tx, spec);
    const rec = await tx.record((draft) => {
      const r: SandboxRecord = {
        id, name: nameFor(draft, key), created: new Date().toISOString(), mode: 'external', netnsPath: req.netns,
        hostname: key.containerId.slice(0, 12), dns: [], dnsSearch: [], addHosts: [], env: [], links: [], expose: [],
        publish: [], publishAll: false, publishAllow: [], endpoints: [], cmd: [],
        ...(egressAllow ? { egressAllow } : {}),
        external: { engine: 'cni', peer: '', cni: key },
      };
      const ep = newEndpoint(draft, n, r, { ...takeSharedAddresses(draft, n, ips), aliases, shared: true });
      // The endpoint shares the sandbox's id: its host-side veth is named from the key too.
      r.endpoints.push({ ...ep, id, ifname: key.ifname, ...(ep.hostIf ? { hostIf: hostIfName(id) } : {}), ...(mac ? { mac } : {}) });
      r.publish = allocatePublishes(draft, id, publish, false, [], core.opts.ports).map((p) => (hold ? p : { ...p, unheld: true }));
      draft.sandboxes[id] = r;
      return r;
    }, (s) => {
      for (const ep of s.sandboxes[id]?.endpoints ?? []) forget(s, ep);
      delete s.sandboxes[id];
    });
    tx.onUndo(() => leaveEndpoint(core, rec, rec.endpoints[0]!));
    await joinEndpoint(core, rec, rec.endpoints[0]!);
    return rec;
  });
  core.log.info({ sandbox: sb.name, cni: key, netns: req.netns, network: spec.name, addresses: sb.endpoints.map((e) => e.v4) }, 'cni attachment added');
  return attachmentView(core.state, sb);
}

/** Gives @ep's addresses back: to its network's pools, and to Docker's IPAM pool on a shared network. */
function forget(s: State, ep: EndpointRecord): void {
  releaseEndpoint(s, ep);
  releaseSharedAddresses(s, ep);
}

/** Forgets @sb and takes its veth away (the namespace is the runtime's); a network made for it goes with its last attachment unless @keepNetwork. */
async function detachRecord(core: Core, sb: SandboxRecord, keepNetwork = false): Promise<void> {
  await core.commit((s) => {
    for (const ep of s.sandboxes[sb.id]?.endpoints ?? []) forget(s, ep);
    delete s.sandboxes[sb.id];
  });
  for (const ep of sb.endpoints) await leaveEndpoint(core, sb, ep).catch(() => undefined);
  if (!keepNetwork) for (const ep of sb.endpoints) await removeIfUnused(core, ep.network);
}

/** DEL: idempotent; an unknown attachment is gone already. */
export async function detach(core: Core, k: Partial<CniAttachmentKey>): Promise<boolean> {
  const sb = attachmentOf(core.state, checkKey(k));
  if (!sb) return false;
  await detachRecord(core, sb);
  core.log.info({ sandbox: sb.name, cni: sb.external?.cni }, 'cni attachment deleted');
  return true;
}

/** What CHECK compares against: the addresses and MAC of the runtime's prevResult (for this interface). */
export interface CheckRequest extends CniAttachmentKey {
  netns: string;
  expect?: { addresses?: string[]; mac?: string };
}

/** CHECK: the attachment is as ADD left it (record, host veth on its bridge, interface, MAC and addresses in the namespace). */
export async function checkAttachment(core: Core, req: CheckRequest): Promise<{ ok: true }> {
  const key = checkKey(req ?? {});
  const sb = attachmentOf(core.state, key);
  if (!sb) throw notFound(`no attachment of container '${key.containerId}' interface '${key.ifname}' on CNI network '${key.network}'`);
  const ep = sb.endpoints[0]!;
  const n = core.state.networks[ep.network];
  if (!n) throw conflict(`network of attachment '${sb.name}' is gone`);
  if (typeof req.netns === 'string' && req.netns && req.netns !== sb.netnsPath) throw conflict(`CNI_NETNS '${req.netns}' is not the namespace '${sb.netnsPath}' the attachment was added in`);
  if (!(await netnsExists(sb.netnsPath))) throw notFound(`namespace '${sb.netnsPath}' of attachment '${sb.name}' is gone`);
  const view = attachmentView(core.state, sb);
  const want = req.expect ?? {};
  for (const a of want.addresses ?? []) {
    if (!view.ips.some((i) => i.address === a)) throw conflict(`prevResult's address ${a} is not the attachment's (${view.ips.map((i) => i.address).join(', ') || 'none'})`);
  }
  if (want.mac && want.mac.toLowerCase() !== ep.mac) throw conflict(`prevResult's MAC ${want.mac} is not the attachment's ${ep.mac}`);
  if (ep.hostIf) {
    const host = (await nl.linkList({})).find((l) => l.name === ep.hostIf);
    if (!host) throw conflict(`host-side veth '${ep.hostIf}' of attachment '${sb.name}' is missing`);
    if (n.bridge) {
      const br = (await nl.linkList({})).find((l) => l.name === n.bridge);
      if (!br || host.master !== br.ifindex) throw conflict(`host-side veth '${ep.hostIf}' is not on bridge '${n.bridge}' of network '${n.name}'`);
    }
  }
  const inside = (await nl.linkList({ netns: sb.netnsPath })).find((l) => l.name === ep.ifname);
  if (!inside) throw conflict(`interface '${ep.ifname}' is missing in namespace '${sb.netnsPath}'`);
  if (inside.mac.toLowerCase() !== ep.mac) throw conflict(`interface '${ep.ifname}' has MAC ${inside.mac}, the attachment's is ${ep.mac}`);
  if (!inside.up) throw conflict(`interface '${ep.ifname}' in '${sb.netnsPath}' is down`);
  const addrs = (await nl.addrList({ netns: sb.netnsPath, dev: ep.ifname })).map((a) => a.cidr);
  for (const ip of view.ips) if (!addrs.includes(ip.address)) throw conflict(`interface '${ep.ifname}' lacks its address ${ip.address} (has: ${addrs.join(', ') || 'none'})`);
  return { ok: true };
}

/** GC: removes CNI network @network's attachments that are not in @valid (the runtime's cni.dev/valid-attachments). */
export async function gcAttachments(core: Core, network: unknown, valid: unknown): Promise<string[]> {
  if (typeof network !== 'string' || !network) throw badRequest(`CNI network name '${String(network)}' is empty or not a string`);
  if (!Array.isArray(valid)) throw badRequest(`cni.dev/valid-attachments: ${JSON.stringify(valid)} is not a list`);
  const keep = new Set<string>();
  valid.forEach((v: Record<string, unknown>, i) => {
    if (typeof v?.containerID !== 'string' || typeof v?.ifname !== 'string') {
      throw badRequest(`cni.dev/valid-attachments[${i}]: ${JSON.stringify(v)} needs "containerID" and "ifname" strings`);
    }
    keep.add(attachmentId({ network, containerId: v.containerID, ifname: v.ifname }));
  });
  const removed: string[] = [];
  for (const sb of attachmentsOn(core.state, network)) {
    if (keep.has(sb.id)) continue;
    await detachRecord(core, sb);
    removed.push(sb.name);
  }
  if (removed.length) core.log.info({ network, removed }, 'cni attachments garbage-collected');
  return removed;
}
