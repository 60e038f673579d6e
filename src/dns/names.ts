/**
 * Pure name logic of the embedded DNS: how a question's name is handed to
 * the controller, reverse (PTR) names to addresses and back, and upstream
 * server specs. No sockets here.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';

/**
 * The form the controller's lookup receives: ASCII-lowercased (DNS compares
 * names case-insensitively, and only in ASCII), without the trailing dot.
 * The root name becomes ''.
 */
export function normalizeName(name: string): string {
  return name.replace(/\.$/, '').replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/**
 * Whether a name can be encoded in a DNS message: 1–63 bytes a label, at
 * most 253 characters written out (255 on the wire). Guards the names the
 * controller hands back for PTR answers.
 */
export function isEncodableName(name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (n === '' || Buffer.byteLength(n) > 253) return false;
  return n.split('.').every((l) => l.length > 0 && Buffer.byteLength(l) <= 63);
}

const V4_REVERSE = '.in-addr.arpa';
const V6_REVERSE = '.ip6.arpa';

/**
 * The address a full reverse name stands for, in canonical form
 * ('4.3.2.1.in-addr.arpa' → '1.2.3.4'; 32 nibbles '.ip6.arpa' → RFC 5952
 * text), or null for anything else (partial zones such as
 * '18.172.in-addr.arpa', bad labels), which is not a container's address.
 * Expects a normalized name.
 */
export function reverseNameToIp(name: string): string | null {
  if (name.endsWith(V4_REVERSE)) {
    const labels = name.slice(0, -V4_REVERSE.length).split('.');
    if (labels.length !== 4) return null;
    // Leading zeros are refused: '010' is not how any resolver writes 10.
    if (!labels.every((l) => /^(0|[1-9][0-9]{0,2})$/.test(l) && Number(l) <= 255)) return null;
    return labels.reverse().join('.');
  }
  if (name.endsWith(V6_REVERSE)) {
    const nibbles = name.slice(0, -V6_REVERSE.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/.test(n))) return null;
    const hex = nibbles.reverse().join('');
    const groups: number[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(parseInt(hex.slice(i, i + 4), 16));
    return formatIPv6(groups);
  }
  return null;
}

/** The reverse name of an address, without the trailing dot. */
export function ipToReverseName(ip: string): string {
  if (isIPv4(ip)) return ip.split('.').reverse().join('.') + V4_REVERSE;
  if (isIPv6(ip)) {
    const hex = parseIPv6(ip)
      .map((g) => g.toString(16).padStart(4, '0'))
      .join('');
    return [...hex].reverse().join('.') + V6_REVERSE;
  }
  throw new TypeError(`'${ip}' is not an IPv4 or IPv6 address`);
}

/** An IPv6 address in RFC 5952 text (lowercase, longest zero run as '::'). */
export function canonicalIPv6(ip: string): string {
  if (!isIPv6(ip)) throw new TypeError(`'${ip}' is not an IPv6 address`);
  return formatIPv6(parseIPv6(ip));
}

/** Eight 16-bit groups of a valid IPv6 address (a zone suffix is dropped). */
function parseIPv6(ip: string): number[] {
  let text = ip.replace(/%.*$/, '');
  const tail: number[] = [];
  // An embedded IPv4 tail ('::ffff:192.0.2.1') is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, v4.index);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const fill = 8 - tail.length - left.length - right.length;
  return [...left, ...(rest === undefined ? [] : new Array<number>(fill).fill(0)), ...right, ...tail];
}

function formatIPv6(groups: number[]): string {
  // Longest run of two or more zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export interface Upstream {
  host: string;
  port: number;
  family: 4 | 6;
}

/**
 * An upstream server spec: '192.0.2.53', '192.0.2.53:5353', '2001:db8::1',
 * '[2001:db8::1]' or '[2001:db8::1]:5353'. Host names are refused: resolving
 * them would need the very DNS being configured.
 */
export function parseUpstream(spec: string): Upstream {
  const bad = (why: string) =>
    new TypeError(
      `upstream '${spec}' ${why} (expected an IP address with an optional port: ` +
        `'192.0.2.53', '192.0.2.53:5353', '[2001:db8::1]:5353')`,
    );
  if (typeof spec !== 'string') throw bad('is not a string');
  let host = spec;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(spec);
  if (bracketed) {
    host = bracketed[1] as string;
    portText = bracketed[2];
    if (!isIPv6(host)) throw bad('has no IPv6 address in brackets');
  } else if (!isIPv6(spec)) {
    const i = spec.lastIndexOf(':');
    if (i >= 0) [host, portText] = [spec.slice(0, i), spec.slice(i + 1)];
    if (!isIPv4(host)) throw bad('is not an IP address');
  }
  let port = 53;
  if (portText !== undefined) {
    port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw bad(`has port '${portText}' outside 1..65535`);
  }
  return { host, port, family: isIP(host) === 6 ? 6 : 4 };
}

/** 'host:port' for logs and errors, bracketing IPv6. */
export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
