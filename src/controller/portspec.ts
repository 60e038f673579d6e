/**
 * Docker's publish syntax: [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/tcp|udp|sctp],
 * with IPv6 host addresses in brackets ([::1]:8080:80).
 */
import { badRequest } from '../errors.js';
import { parseIp } from '../ipam/addr.js';
import type { PortProto, Proto } from '../store/model.js';

export interface PortSpec {
  /** '' = all addresses */
  hostIp: string;
  /** 0 = pick one; with hostEnd: a range */
  hostPort: number;
  hostEnd: number;
  containerPort: number;
  containerEnd: number;
  proto: Proto;
}

const PROTOS: Proto[] = ['tcp', 'udp', 'sctp'];

function port(s: string, spec: string, what: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) {
    throw badRequest(`invalid publish spec '${spec}': ${what} '${s}' is not a port from 1 to 65535`);
  }
  return Number(s);
}

function range(s: string, spec: string, what: string): [number, number] {
  const [a, b, extra] = s.split('-');
  if (extra !== undefined || a === undefined) throw badRequest(`invalid publish spec '${spec}': bad ${what} '${s}'`);
  const lo = port(a, spec, what);
  const hi = b === undefined ? lo : port(b, spec, what);
  if (hi < lo) throw badRequest(`invalid publish spec '${spec}': ${what} range '${s}' ends before it starts`);
  return [lo, hi];
}

export function parseProto(p: string, spec: string): Proto {
  const proto = p.toLowerCase() as Proto;
  if (!PROTOS.includes(proto)) throw badRequest(`invalid publish spec '${spec}': protocol '${p}' is not tcp, udp or sctp`);
  return proto;
}

export function parsePortSpec(spec: string): PortSpec {
  let rest = spec.trim();
  let proto: Proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = parseProto(rest.slice(slash + 1), spec);
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw badRequest(`invalid publish spec '${spec}': unterminated [IPv6 address]`);
    hostIp = parseIp(rest.slice(1, close), `host address in '${spec}'`).text;
    rest = rest.slice(close + 2);
  }
  const parts = rest.split(':');
  if (parts.length > 3 || parts.some((p, i) => p === '' && i === parts.length - 1)) {
    throw badRequest(`invalid publish spec '${spec}': expected [HOSTIP:][HOSTPORT:]CONTAINERPORT[/PROTO]`);
  }
  if (parts.length === 3) {
    if (hostIp) throw badRequest(`invalid publish spec '${spec}': two host addresses`);
    hostIp = parts[0] ? parseIp(parts[0], `host address in '${spec}'`).text : '';
    parts.shift();
  }
  const [cLo, cHi] = range(parts[parts.length - 1]!, spec, 'container port');
  let hLo = 0;
  let hHi = 0;
  if (parts.length === 2 && parts[0] !== '') [hLo, hHi] = range(parts[0]!, spec, 'host port');
  if (hLo && hHi - hLo !== cHi - cLo && cHi !== cLo) {
    throw badRequest(`invalid publish spec '${spec}': host range ${hLo}-${hHi} and container range ${cLo}-${cHi} differ in length`);
  }
  if (!hLo && cHi !== cLo) hHi = 0;
  return { hostIp, hostPort: hLo, hostEnd: hHi, containerPort: cLo, containerEnd: cHi, proto };
}

/** "80", "80/udp" for --expose. */
export function parseExpose(spec: string): PortProto[] {
  const [p, pr] = spec.split('/');
  const proto = pr ? parseProto(pr, spec) : 'tcp';
  const [lo, hi] = range(p ?? '', spec, 'port');
  const out: PortProto[] = [];
  for (let x = lo; x <= hi; x++) out.push({ port: x, proto });
  return out;
}
