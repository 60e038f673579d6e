/**
 * The host-port allocator: turns publish specs into published ports, picking
 * free ports for -P and host port 0 from the ephemeral range (Docker's) or a
 * given range, and refusing a port another sandbox publishes or another
 * program on the host holds.
 */
import { conflict } from '../errors.js';
import type { PortProto, PublishRecord, State } from '../store/model.js';
import type { PortSpec } from './portspec.js';
import type { PortHolder } from '../drivers/ports.js';

/** Ports handed out for -P and for host port 0 (Docker uses the same range). */
const EPHEMERAL = { lo: 32768, hi: 60999 };

/**
 * The published ports of sandbox @sbId for @specs (plus, with @publishAll,
 * every exposed port not covered), allocated against @draft's other sandboxes.
 */
export function allocatePublishes(draft: State, sbId: string, specs: PortSpec[], publishAll: boolean, expose: PortProto[], ports?: PortHolder): PublishRecord[] {
  const parsed = [...specs];
  if (publishAll) {
    for (const e of expose) {
      if (!parsed.some((p) => p.containerPort <= e.port && e.port <= p.containerEnd && p.proto === e.proto)) {
        parsed.push({ hostIp: '', hostPort: 0, hostEnd: 0, containerPort: e.port, containerEnd: e.port, proto: e.proto });
      }
    }
  }
  // Every host port already published (by other sandboxes, or earlier in this list), indexed by protocol and port:
  // a clash check costs the ports it asks about, not the number of publishes (10,000 single ports are common).
  const byPort = new Map<string, PublishRecord[]>();
  const claim = (t: PublishRecord) => {
    for (let port = t.hostPort; port < t.hostPort + t.count; port++) {
      const k = `${t.proto}/${port}`;
      const at = byPort.get(k);
      if (at) at.push(t);
      else byPort.set(k, [t]);
    }
  };
  for (const s of Object.values(draft.sandboxes)) if (s.id !== sbId) s.publish.forEach(claim);
  const out: PublishRecord[] = [];
  const clash = (ip: string, lo: number, count: number, proto: string): PublishRecord | undefined => {
    for (let port = lo; port < lo + count; port++) {
      const t = byPort.get(`${proto}/${port}`)?.find((x) => x.hostIp === '' || ip === '' || x.hostIp === ip);
      if (t) return t;
    }
    return undefined;
  };
  for (const p of parsed) {
    const count = p.containerEnd - p.containerPort + 1;
    let host = p.hostPort;
    if (!host || (p.hostEnd > p.hostPort && count === 1)) {
      // Any free port: from the given host range, or the ephemeral range.
      const lo = host || EPHEMERAL.lo;
      const hi = host ? p.hostEnd : EPHEMERAL.hi;
      let pick = host ? lo : (draft.nextEphemeral ?? EPHEMERAL.lo);
      let found = 0;
      for (let i = 0; i <= hi - lo; i++) {
        if (pick + count - 1 > hi) pick = lo;
        if (!clash(p.hostIp, pick, count, p.proto) && !ports?.inUse({ hostIp: p.hostIp, hostPort: pick, count, proto: p.proto })) { found = pick; break; }
        pick += 1;
      }
      if (!found) throw conflict(`no free host port for ${p.containerPort}/${p.proto} in ${lo}-${hi}`);
      host = found;
      if (!p.hostPort) draft.nextEphemeral = found + count > EPHEMERAL.hi ? EPHEMERAL.lo : found + count;
    } else {
      const c = clash(p.hostIp, host, count, p.proto);
      if (c) {
        const owner = Object.values(draft.sandboxes).find((s) => s.publish.includes(c));
        throw conflict(`host port ${p.hostIp ? `${p.hostIp}:` : ''}${host}${count > 1 ? `-${host + count - 1}` : ''}/${p.proto} is already published${owner ? ` by '${owner.name}'` : ''}`);
      }
      const busy = ports?.inUse({ hostIp: p.hostIp, hostPort: host, count, proto: p.proto });
      if (busy) throw conflict(busy);
    }
    const rec: PublishRecord = { hostIp: p.hostIp, hostPort: host, count, containerPort: p.containerPort, proto: p.proto };
    out.push(rec);
    claim(rec);
  }
  return out;
}
