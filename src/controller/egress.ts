/**
 * Egress allow-lists (`--egress-allow`): the destinations outside its networks
 * a sandbox may open connections to. One rule is written
 *
 *   CIDR[:PORT[/PROTO]]     198.51.100.0/24, 198.51.100.7:443/tcp, 198.51.100.7
 *   [CIDR]:PORT[/PROTO]     [2001:db8::/32]:53/udp (IPv6 with a port: brackets)
 *   CIDR                    2001:db8::/32 (IPv6 without a port: brackets optional)
 *
 * A bare address is its /32 or /128; a port without a protocol is TCP, as in
 * `-p`. The word `none` alone is an empty list: nothing outside is reachable.
 */
import { badRequest } from '../errors.js';
import { familyOf, parseIp, parsePrefix } from '../ipam/addr.js';
import type { EgressRule, Proto } from '../store/model.js';

/** Rules one sandbox may have: each is a rule per family in the datapath. */
export const MAX_EGRESS_RULES = 256;
const PROTOS: readonly Proto[] = ['tcp', 'udp', 'sctp'];
const SYNTAX = 'expected CIDR[:PORT[/PROTO]], e.g. 198.51.100.0/24, 198.51.100.7:443/tcp or [2001:db8::/32]:53/udp';

export function parseEgressRule(spec: string): EgressRule {
  const bad = (why: string) => badRequest(`invalid --egress-allow '${spec}': ${why}`);
  const s = spec.trim();
  let addr: string;
  let rest: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw bad("no closing ']'");
    addr = s.slice(1, end);
    const after = s.slice(end + 1);
    if (after && !after.startsWith(':')) throw bad(`unexpected '${after}' after ']' (${SYNTAX})`);
    if (after === ':') throw bad('no port after the colon');
    rest = after ? after.slice(1) : undefined;
    if (familyOf(addr.split('/')[0]!) !== 6) throw bad('brackets are for IPv6 prefixes only');
  } else if ((s.match(/:/g) ?? []).length > 1) {
    // Colons belong to the IPv6 address: a port needs brackets.
    addr = s;
    if (!familyOf(s.split('/')[0]!) || !/^[^/]+(\/\d{1,3})?$/.test(s)) throw bad(`an IPv6 destination with a port is written [PREFIX]:PORT/PROTO (${SYNTAX})`);
  } else {
    const colon = s.indexOf(':');
    addr = colon < 0 ? s : s.slice(0, colon);
    rest = colon < 0 ? undefined : s.slice(colon + 1);
    if (rest === '') throw bad('no port after the colon');
  }
  let cidr: string;
  try {
    cidr = addr.includes('/') ? parsePrefix(addr, 'destination').text : hostPrefix(addr);
  } catch (e) {
    throw bad(`${(e as Error).message} (${SYNTAX})`);
  }
  if (rest === undefined) return { cidr };
  const m = /^(\d{1,5})(?:\/([A-Za-z]+))?$/.exec(rest);
  if (!m) throw bad(`'${rest}' is not PORT or PORT/PROTO (${SYNTAX})`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw bad(`port ${m[1]} is not from 1 to 65535`);
  const proto = (m[2] ?? 'tcp').toLowerCase() as Proto;
  if (!PROTOS.includes(proto)) throw bad(`protocol '${m[2]}' is not tcp, udp or sctp`);
  return { cidr, port, proto };
}

function hostPrefix(ip: string): string {
  const a = parseIp(ip, 'destination');
  return `${a.text}/${a.family === 4 ? 32 : 128}`;
}

/**
 * The list given as the CLI or API gives it: undefined for no option at all,
 * [] for `none`, else the rules, duplicates dropped.
 */
export function parseEgressList(specs: string[]): EgressRule[] | undefined {
  if (!specs.length) return undefined;
  if (specs.some((s) => s.trim().toLowerCase() === 'none')) {
    if (specs.length > 1) throw badRequest(`--egress-allow none cannot be combined with other destinations (${specs.filter((s) => s.trim().toLowerCase() !== 'none').join(', ')})`);
    return [];
  }
  if (specs.length > MAX_EGRESS_RULES) throw badRequest(`${specs.length} --egress-allow rules given: at most ${MAX_EGRESS_RULES} per sandbox`);
  const out = new Map<string, EgressRule>();
  for (const s of specs) {
    const r = parseEgressRule(s);
    out.set(formatEgressRule(r), r);
  }
  return [...out.values()];
}

/** The rule in its own syntax, normalised (what `berth inspect` shows). */
export function formatEgressRule(r: EgressRule): string {
  if (r.port === undefined) return r.cidr;
  const v6 = r.cidr.includes(':');
  return `${v6 ? `[${r.cidr}]` : r.cidr}:${r.port}/${r.proto ?? 'tcp'}`;
}
