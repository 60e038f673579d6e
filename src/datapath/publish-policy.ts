/**
 * The operator's publish policy (issue 17): the sources allowed to reach any
 * published port at all, host-wide (`berthd --publish-allow`) and per network
 * (`-o publish.allow`). Pure: parsing the lists, and the prefix arithmetic
 * desired.ts resolves each publish's sources with. A publish's own allow-list
 * can only narrow what the policy admits; the two lists of a network combine
 * the same way (a source must be in both).
 */
import { BerthError } from '../errors.js';
import { containsPrefix, familyOf, parsePrefix, type Prefix } from '../ipam/addr.js';

/** The policy's prefixes from "CIDR[,CIDR...]", normalised; refuses naming the first bad item (@where: the flag or option). */
export function parsePublishAllow(text: string, where: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (!text.trim() || items.some((s) => !s)) {
    throw new BerthError('bad-request', `${where}: '${text}' is not a list of source prefixes; expected CIDR[,CIDR...] such as 192.168.0.0/16,2001:db8::/32`);
  }
  const out: string[] = [];
  for (const item of items) {
    let p: Prefix;
    try {
      p = parsePrefix(item, 'source prefix', true);
    } catch {
      throw new BerthError('bad-request', `${where}: '${item}' is not an address/prefix such as 192.168.0.0/16 or 2001:db8::/32`);
    }
    if (!out.includes(p.text)) out.push(p.text);
  }
  return out;
}

const prefix = (cidr: string) => parsePrefix(cidr.includes('/') ? cidr : `${cidr}/${familyOf(cidr) === 4 ? 32 : 128}`, 'prefix', true);

/** The sources in both @a and @b (prefix lists), without prefixes another of the result covers. */
export function intersectPrefixes(a: string[], b: string[]): string[] {
  const out: Prefix[] = [];
  for (const x of a.map(prefix)) {
    for (const y of b.map(prefix)) {
      if (containsPrefix(x, y)) out.push(y);
      else if (containsPrefix(y, x)) out.push(x);
    }
  }
  return minimal(out);
}

function minimal(ps: Prefix[]): string[] {
  const keep = ps.filter((p, i) => !ps.some((q, j) => j !== i && containsPrefix(q, p) && (q.bits < p.bits || j < i)));
  return [...new Set(keep.map((p) => p.text))].sort();
}

/** Every source of @family. */
export const everyAddress = (family: 4 | 6) => (family === 4 ? '0.0.0.0/0' : '::/0');
/** The host's loopback sources of @family: never subject to the policy (they are the host itself). */
export const loopbackPrefix = (family: 4 | 6) => (family === 4 ? '127.0.0.0/8' : '::1/128');

export const familyOfPrefix = (cidr: string) => familyOf(cidr.split('/')[0]!);

/** A network's effective policy: the host's and the network's lists combined; undefined: no policy (every source). */
export function networkPolicy(host: string[] | undefined, net: string[] | undefined): string[] | undefined {
  if (host && net) return intersectPrefixes(host, net);
  return host ?? net;
}

/** Where a network's policy comes from, as `berth exposure` names it. */
export function policySource(host: boolean, netName: string | undefined): string {
  return [host ? 'berthd --publish-allow' : '', netName ? `network ${netName} -o publish.allow` : ''].filter(Boolean).join(' and ');
}
