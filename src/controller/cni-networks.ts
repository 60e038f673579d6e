/**
 * The berth network a CNI attachment lands on: the one its configuration
 * names (checked against what the configuration asks for), or one made on
 * the first ADD and removed again with its last attachment, as netavark
 * removes a bridge nobody uses (so `podman network rm` leaves nothing of
 * berth's). A network Docker made through berth's remote driver can be
 * shared when the operator names it (`-o berth.network=NAME`): its addresses
 * then come from the berth IPAM pool Docker allocates from, so the two
 * engines never hand out the same address.
 */
import { badRequest, conflict } from '../errors.js';
import { parseIp, parsePrefix, type Family } from '../ipam/addr.js';
import { allocate, poolFor, release } from '../ipam/ipam.js';
import { mtuOf } from '../drivers/bridge.js';
import type { EndpointRecord, NetworkRecord, PoolRecord, State } from '../store/model.js';
import { NAME_RE } from './requests.js';
import { createNetwork, removeNetwork } from './networks.js';
import type { Transaction } from './transaction.js';
import type { Core } from './core.js';

/** The berth network a CNI configuration names, with what it must have (made so when it does not exist). */
export interface CniNetworkSpec {
  name: string;
  subnet?: string;
  gateway?: string;
  /** an IPv6 subnet: the network has IPv6 */
  subnet6?: string;
  icc?: boolean;
  internal?: boolean;
  mtu?: number;
}

export function parseSpec(raw: unknown): CniNetworkSpec {
  const s = (raw ?? {}) as Record<string, unknown>;
  if (typeof s.name !== 'string' || !NAME_RE.test(s.name)) {
    throw badRequest(`network '${String(s.name)}' is not a valid berth network name: set "network" in the CNI configuration to letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  const out: CniNetworkSpec = { name: s.name };
  if (s.subnet !== undefined) out.subnet = parsePrefix(String(s.subnet), 'subnet').text;
  if (s.subnet6 !== undefined) out.subnet6 = parsePrefix(String(s.subnet6), 'subnet6').text;
  if (s.gateway !== undefined) out.gateway = parseIp(String(s.gateway), 'gateway').text;
  for (const k of ['icc', 'internal'] as const) {
    if (s[k] === undefined) continue;
    if (typeof s[k] !== 'boolean') throw badRequest(`"${k}": ${JSON.stringify(s[k])} is not true or false`);
    out[k] = s[k];
  }
  if (s.mtu !== undefined) {
    if (!Number.isInteger(s.mtu) || (s.mtu as number) < 68 || (s.mtu as number) > 65535) throw badRequest(`"mtu": ${JSON.stringify(s.mtu)} is not a number from 68 to 65535`);
    out.mtu = s.mtu as number;
  }
  if (out.subnet && parsePrefix(out.subnet).family !== 4) throw badRequest(`"subnet": ${out.subnet} is not an IPv4 subnet (IPv6 goes in "subnet6")`);
  if (out.subnet6 && parsePrefix(out.subnet6).family !== 6) throw badRequest(`"subnet6": ${out.subnet6} is not an IPv6 subnet`);
  return out;
}

/** Refuses an existing network that differs from what the configuration asks for, naming the difference. */
function checkMatches(n: NetworkRecord, spec: CniNetworkSpec): void {
  const differ = (what: string, have: string, want: string) =>
    conflict(`network '${n.name}' exists with ${what} ${have}, the CNI configuration asks for ${want}: use the existing network's settings or another "network" name`);
  const v4 = poolFor(n.pools, 4);
  const v6 = poolFor(n.pools, 6);
  if (spec.subnet && v4?.subnet !== spec.subnet) throw differ('subnet', v4?.subnet ?? 'none', spec.subnet);
  if (spec.gateway && ![v4?.gateway, v6?.gateway].includes(spec.gateway)) throw differ('gateway', [v4?.gateway, v6?.gateway].filter(Boolean).join(' and '), spec.gateway);
  if (spec.subnet6 && v6?.subnet !== spec.subnet6) throw differ('IPv6 subnet', v6?.subnet ?? 'none', spec.subnet6);
  if (spec.internal !== undefined && spec.internal !== n.internal) throw differ('internal', String(n.internal), `internal ${spec.internal}`);
  const icc = (n.options.icc ?? 'true') === 'true';
  if (spec.icc !== undefined && spec.icc !== icc) throw differ('icc', String(icc), `icc ${spec.icc}`);
  if (spec.mtu !== undefined && spec.mtu !== mtuOf(n)) throw differ('mtu', String(mtuOf(n)), `mtu ${spec.mtu}`);
}

/** The network @spec names: the existing one (when it matches) or one made now, removed again if the attachment fails. */
export async function ensureNetwork(core: Core, tx: Transaction, spec: CniNetworkSpec): Promise<NetworkRecord> {
  const have = Object.values(core.state.networks).find((n) => n.name === spec.name);
  if (have) {
    checkMatches(have, spec);
    if (have.external) checkShareable(core.state, have);
    return have;
  }
  const options: Record<string, string> = {};
  if (spec.icc !== undefined) options.icc = String(spec.icc);
  if (spec.mtu !== undefined) options.mtu = String(spec.mtu);
  const n = await createNetwork(core, {
    name: spec.name,
    subnets: [spec.subnet, spec.subnet6].filter((x): x is string => !!x),
    ...(spec.gateway ? { gateways: [spec.gateway] } : {}),
    ...(spec.internal ? { internal: true } : {}),
    ...(spec.subnet6 ? { ipv6: true } : {}),
    options,
  });
  tx.onUndo(() => removeNetwork(core, n.id));
  await core.commit((s) => {
    s.networks[n.id]!.madeByCni = true;
  });
  return core.state.networks[n.id]!;
}

/** Docker's berth IPAM pool for @n's @family subnet: the one allocator both engines use on a shared network. */
function enginePool(state: State, n: NetworkRecord, family: Family): PoolRecord | undefined {
  const subnet = poolFor(n.pools, family)?.subnet;
  return subnet ? Object.values(state.ipamPools ?? {}).find((p) => p.subnet === subnet) : undefined;
}

/** A network of another engine takes CNI attachments only when it is Docker's and its addresses are berth IPAM's. */
function checkShareable(state: State, n: NetworkRecord): void {
  if (n.external?.engine !== 'docker') throw badRequest(`network '${n.name}' belongs to ${n.external?.engine}: CNI containers cannot join it`);
  for (const f of [4, 6] as const) {
    if (poolFor(n.pools, f) && !enginePool(state, n, f)) {
      throw conflict(`network '${n.name}' is Docker's with Docker's own IPAM for ${poolFor(n.pools, f)!.subnet}: create it with --ipam-driver berth too, so that Docker and CNI containers share one allocator`);
    }
  }
}

/** On a Docker network: @want's addresses (or the next free ones) taken in Docker's IPAM pool; elsewhere @want as it is. */
export function takeSharedAddresses(draft: State, n: NetworkRecord, want: { ip?: string; ip6?: string }): { ip?: string; ip6?: string } {
  if (!n.external) return want;
  const out: { ip?: string; ip6?: string } = {};
  for (const [f, k] of [[4, 'ip'], [6, 'ip6']] as const) {
    const pool = enginePool(draft, n, f);
    if (pool && (f === 4 || n.ipv6)) out[k] = allocate(pool, want[k]);
  }
  return out;
}

/** Gives @ep's addresses back to Docker's IPAM pool, when its network is Docker's. */
export function releaseSharedAddresses(draft: State, ep: EndpointRecord): void {
  const n = draft.networks[ep.network];
  if (!n?.external) return;
  for (const [f, a] of [[4, ep.v4], [6, ep.v6]] as const) {
    const pool = enginePool(draft, n, f);
    if (pool && a) release(pool, a);
  }
}

/** After an attachment left network @networkId: one berth-cni made goes with its last endpoint. */
export async function removeIfUnused(core: Core, networkId: string): Promise<boolean> {
  const n = core.state.networks[networkId];
  if (!n?.madeByCni || core.membersOf(n).length) return false;
  await removeNetwork(core, n.id);
  core.log.info({ network: n.name }, 'network made for CNI removed with its last attachment');
  return true;
}

