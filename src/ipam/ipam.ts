/**
 * Address pools of a network: the gateway, aux addresses and allocated
 * addresses are never handed out twice; dynamic allocation draws from the
 * ip-range (or the subnet) and continues after the last address it gave, so
 * a released address is reused only once the range has gone round.
 */
import { badRequest, conflict } from '../errors.js';
import type { PoolRecord } from '../store/model.js';
import { bigToIp, contains, parseIp, parsePrefix, prefixLast, type Family, type Prefix } from './addr.js';

export interface PoolRequest {
  subnet: string;
  gateway?: string;
  ipRange?: string;
  aux?: Record<string, string>;
}

/** Usable host addresses of @p: IPv4 leaves out the network and broadcast addresses. */
function hostBounds(p: Prefix): [bigint, bigint] {
  if (p.family === 4 && p.bits <= 30) return [p.base + 1n, prefixLast(p) - 1n];
  if (p.family === 6 && p.bits <= 126) return [p.base + 1n, prefixLast(p)];
  return [p.base, prefixLast(p)];
}

/** Builds and validates a pool; every refusal names the bad value. */
export function makePool(req: PoolRequest): PoolRecord {
  const subnet = parsePrefix(req.subnet, 'subnet');
  const [lo, hi] = hostBounds(subnet);
  if (hi - lo < 1n) throw badRequest(`subnet ${subnet.text} is too small: it needs room for a gateway and at least one address`);
  let gateway: string;
  if (req.gateway) {
    const gw = parseIp(req.gateway, 'gateway');
    if (!contains(subnet, gw.value, gw.family) || gw.value < lo || gw.value > hi) {
      throw badRequest(`gateway ${req.gateway} is not a usable address of subnet ${subnet.text}`);
    }
    gateway = gw.text;
  } else {
    gateway = bigToIp(lo, subnet.family);
  }
  let ipRange: string | undefined;
  if (req.ipRange) {
    const r = parsePrefix(req.ipRange, 'ip-range');
    if (r.family !== subnet.family || r.base < subnet.base || prefixLast(r) > prefixLast(subnet)) {
      throw badRequest(`ip-range ${req.ipRange} is not inside subnet ${subnet.text}`);
    }
    ipRange = r.text;
  }
  const aux: Record<string, string> = {};
  for (const [name, addr] of Object.entries(req.aux ?? {})) {
    const a = parseIp(addr, `aux-address '${name}'`);
    if (!contains(subnet, a.value, a.family)) throw badRequest(`aux-address ${name}=${addr} is not in subnet ${subnet.text}`);
    aux[name] = a.text;
  }
  return { family: subnet.family, subnet: subnet.text, gateway, ...(ipRange ? { ipRange } : {}), aux, allocated: [] };
}

function reserved(pool: PoolRecord): Set<string> {
  return new Set([pool.gateway, ...Object.values(pool.aux), ...pool.allocated]);
}

/** Takes @explicit (refusing it when out of the subnet or taken) or the next free address. */
export function allocate(pool: PoolRecord, explicit?: string): string {
  const subnet = parsePrefix(pool.subnet);
  const taken = reserved(pool);
  if (explicit) {
    const a = parseIp(explicit, 'address');
    const [lo, hi] = hostBounds(subnet);
    if (a.family !== pool.family || a.value < lo || a.value > hi) {
      throw badRequest(`address ${explicit} is outside the pool ${pool.subnet}`);
    }
    if (taken.has(a.text)) throw conflict(`address ${a.text} is already in use in ${pool.subnet}`);
    pool.allocated.push(a.text);
    return a.text;
  }
  const range = pool.ipRange ? parsePrefix(pool.ipRange) : subnet;
  const [sLo, sHi] = hostBounds(subnet);
  const lo = range.base > sLo ? range.base : sLo;
  const hi = prefixLast(range) < sHi ? prefixLast(range) : sHi;
  const size = hi - lo + 1n;
  const last = pool.last ? parseIp(pool.last).value : hi;
  let start = last + 1n > hi || last < lo ? lo : last + 1n;
  // Walk at most the whole range once; a huge range with a few taken is quick.
  const limit = size < BigInt(taken.size + 1) ? size : BigInt(taken.size + 1);
  for (let i = 0n; i < limit; i++) {
    const text = bigToIp(start, pool.family);
    if (!taken.has(text)) {
      pool.allocated.push(text);
      pool.last = text;
      return text;
    }
    start = start + 1n > hi ? lo : start + 1n;
  }
  throw conflict(`no free address left in ${pool.ipRange ?? pool.subnet}`);
}

export function release(pool: PoolRecord, addr: string): void {
  pool.allocated = pool.allocated.filter((a) => a !== addr);
}

export function poolPrefix(pool: PoolRecord): Prefix {
  return parsePrefix(pool.subnet);
}

export function poolFor(pools: PoolRecord[], family: Family): PoolRecord | undefined {
  return pools.find((p) => p.family === family);
}
