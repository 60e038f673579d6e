/** IPv4/IPv6 addresses and prefixes as bigints, on top of ip-cidr. */
import IPCIDR from 'ip-cidr';
import { badRequest } from '../errors.js';

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  /** network address */
  base: bigint;
  bits: number;
  /** canonical text, e.g. "172.18.0.0/16" or "fd00:1::/64" */
  text: string;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/**
 * A plain dotted quad (no leading zeros) as a number, else undefined. The
 * common case, parsed without ip-cidr: its big-integer path cost about a
 * millisecond an attach over the datapath's few hundred addresses.
 */
function quad(ip: string): number | undefined {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(ip);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v;
}

export function familyOf(ip: string): Family | null {
  if (quad(ip) !== undefined) return 4;
  if (IPCIDR.isValidAddress(ip) && !ip.includes('/')) return ip.includes(':') ? 6 : 4;
  return null;
}

export function ipToBig(ip: string): bigint {
  const q = quad(ip);
  if (q !== undefined) return BigInt(q);
  const a = IPCIDR.createAddress(ip) as unknown as { bigInteger(): bigint | { toString(): string } };
  return BigInt(a.bigInteger().toString());
}

export function bigToIp(n: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Normalises an address (e.g. "fd00:0::1" -> "fd00::1"); throws naming @what. */
export function parseIp(ip: string, what = 'address'): { family: Family; value: bigint; text: string } {
  const family = familyOf(ip);
  if (!family) throw badRequest(`invalid ${what} '${ip}'`);
  const value = ipToBig(ip);
  return { family, value, text: bigToIp(value, family) };
}

/** Parses "a.b.c.d/n" (host bits must be zero unless @allowHostBits). */
export function parsePrefix(cidr: string, what = 'subnet', allowHostBits = false): Prefix {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const family = m?.[1] ? familyOf(m[1]) : null;
  if (!m || !family || Number(m[2]) > BITS[family]) throw badRequest(`invalid ${what} '${cidr}': expected an address/prefix such as 172.20.0.0/16`);
  const bits = Number(m[2]);
  const value = ipToBig(m[1]!);
  const mask = ((1n << BigInt(bits)) - 1n) << BigInt(BITS[family] - bits);
  const base = value & mask;
  if (base !== value && !allowHostBits) {
    throw badRequest(`invalid ${what} '${cidr}': host bits are set (did you mean ${bigToIp(base, family)}/${bits}?)`);
  }
  return { family, base, bits, text: `${bigToIp(base, family)}/${bits}` };
}

export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(BITS[p.family] - p.bits);
}

export function prefixLast(p: Prefix): bigint {
  return p.base + prefixSize(p) - 1n;
}

export function contains(p: Prefix, value: bigint, family: Family): boolean {
  return family === p.family && value >= p.base && value <= prefixLast(p);
}

export function containsPrefix(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && inner.bits >= outer.bits && contains(outer, inner.base, inner.family);
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.base <= prefixLast(b) && b.base <= prefixLast(a);
}
