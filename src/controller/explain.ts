/**
 * `berth explain SRC DST`: whether a new connection from SRC to DST would
 * pass, and what decided. The names are resolved here (sandboxes, their
 * addresses and MACs, `external:IP`, `host`); the answer is the datapath's
 * own: it runs its real programs on a synthetic packet against the live
 * state (Datapath.explain), and this module puts the sandboxes' and
 * networks' names into the explanation.
 */
import { familyOf } from '../ipam/addr.js';
import type { Datapath, DpExplainQuery, DpExplainResult } from '../datapath/datapath.js';
import type { EndpointRecord, SandboxRecord, State } from '../store/model.js';
import { badRequest, notFound } from '../errors.js';
import { byRef } from './names.js';

export interface ExplainRequest {
  src: string;
  dst: string;
  proto?: string;
  port?: number;
  /** send with this source address or MAC instead of the sandbox's own (what a spoofing sandbox would do) */
  srcIp?: string;
  srcMac?: string;
}

export interface Explanation extends DpExplainResult {
  from: string;
  to: string;
  proto: string;
  port?: number;
  /** the sandbox the packet is delivered into */
  sandbox?: string;
  explanation: string;
}

const PROTOS = ['tcp', 'udp', 'icmp', 'sctp'] as const;

interface End {
  label: string;
  addr: string;
  sandbox?: SandboxRecord;
  ep?: EndpointRecord;
}

function endpointFor(sb: SandboxRecord, peer?: SandboxRecord): EndpointRecord {
  const shared = peer && sb.endpoints.find((e) => peer.endpoints.some((p) => p.network === e.network));
  const ep = shared ?? sb.endpoints[0];
  if (!ep) throw badRequest(`sandbox '${sb.name}' has no network endpoint`);
  return ep;
}

/** fe80::/64 with the EUI-64 interface id of @mac, as the kernel forms it. */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const id = [b[0]! ^ 2, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const groups = [0, 2, 4, 6].map((i) => ((id[i]! << 8) | id[i + 1]!).toString(16));
  return `fe80::${groups.join(':')}`;
}

export async function explain(state: State, dp: Datapath | undefined, req: ExplainRequest): Promise<Explanation> {
  if (!dp?.explain) throw badRequest(`berth explain needs a datapath; this berthd runs ${dp?.kind ?? 'none'}`);
  const proto = (req.proto ?? 'tcp').toLowerCase();
  if (!(PROTOS as readonly string[]).includes(proto)) throw badRequest(`protocol '${req.proto}' is not one of ${PROTOS.join(', ')}`);
  const port = proto === 'icmp' ? 0 : req.port ?? 80;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw badRequest(`port ${req.port} is not a port number`);
  const sandboxes = Object.values(state.sandboxes);
  const byName = (ref: string) => byRef(sandboxes, ref);
  const nets = state.networks;
  const netName = (id: string) => nets[id]?.name ?? id;

  const strip = (a: string) => a.replace(/%.*$/, '');
  const resolve = (ref: string, what: string, peer?: SandboxRecord, family?: 4 | 6): End => {
    if (ref === 'host') return { label: 'host', addr: '' };
    const ext = /^external:(.+)$/.exec(ref);
    if (ext) {
      if (!familyOf(strip(ext[1]!))) throw badRequest(`${what} '${ref}': '${ext[1]}' is not an IP address`);
      return { label: ref, addr: strip(ext[1]!) };
    }
    if (familyOf(strip(ref))) {
      const a = strip(ref);
      const owner = sandboxes.find((s) => s.endpoints.some((e) => e.v4 === a || e.v6 === a));
      return { label: owner ? `${owner.name} (${a})` : a, addr: a, ...(owner ? { sandbox: owner, ep: owner.endpoints.find((e) => e.v4 === a || e.v6 === a)! } : {}) };
    }
    const sb = byName(ref);
    if (!sb) throw notFound(`${what} '${ref}' is neither a sandbox, an address, external:IP nor host`);
    const ep = endpointFor(sb, peer);
    // Without an IPv6 address of its own, a sandbox still sends IPv6 from its link-local one (EUI-64 of its MAC).
    const addr = family === 6 ? ep.v6 ?? linkLocal(ep.mac) : family === 4 ? ep.v4 : ep.v4 ?? ep.v6;
    if (!addr) throw badRequest(`sandbox '${sb.name}' has no IPv${family ?? 4} address on network '${netName(ep.network)}'`);
    return { label: sb.name, addr, sandbox: sb, ep };
  };

  const srcSb = req.src !== 'host' && !/^external:/.test(req.src) && !familyOf(strip(req.src)) ? byName(req.src) : undefined;
  const dstSb = req.dst !== 'host' && !/^external:/.test(req.dst) && !familyOf(strip(req.dst)) ? byName(req.dst) : undefined;
  const dst = resolve(req.dst, 'destination', srcSb);
  if (req.dst === 'host') throw badRequest("destination 'host' is ambiguous: give one of the host's addresses");
  const fam = familyOf(dst.addr)!;
  const src = resolve(req.src, 'source', dstSb, fam);
  if (req.srcIp && !familyOf(req.srcIp)) throw badRequest(`source address '${req.srcIp}' is not an IP address`);
  if (req.srcMac && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(req.srcMac)) throw badRequest(`source MAC '${req.srcMac}' is not a MAC address`);

  const sent = req.srcIp ?? (src.label === 'host' ? dst.addr : src.addr);
  if (familyOf(sent) !== fam) throw badRequest(`source ${sent} is IPv${familyOf(sent)} but destination ${dst.addr} is IPv${fam}`);
  const q: DpExplainQuery = { from: 'outside', src: req.srcIp ?? src.addr, dst: dst.addr, proto: proto as DpExplainQuery['proto'], sport: proto === 'icmp' ? 0x4242 : 40000, dport: port };
  if (src.label === 'host') {
    q.from = 'host';
    // The host's own connections to its addresses go through lo, from the address they are for (or loopback to loopback).
    if (!req.srcIp) q.src = dst.addr;
    if (dst.sandbox) {
      return {
        from: 'host', to: dst.label, proto, ...(port ? { port } : {}), verdict: 'pass', delivered: 'sandbox', sandbox: dst.sandbox.name,
        rule: 'host', ruleText: 'the host reaches sandboxes through their bridges', explanation: 'the host reaches its sandboxes through their bridges; berth does not filter the host\'s own traffic',
      };
    }
  } else if (src.sandbox) {
    const ep = src.ep!;
    if (!ep.hostIf) throw badRequest(`sandbox '${src.sandbox.name}' is on network '${netName(ep.network)}', whose traffic berth's datapath does not carry`);
    q.from = 'sandbox';
    q.hostIf = ep.hostIf;
    q.netns = src.sandbox.netnsPath;
    q.ifName = ep.ifname;
    q.srcMac = req.srcMac ?? ep.mac;
    // To a neighbour of the same network: its MAC; anything else goes to the gateway (the bridge).
    q.dstMac = dst.ep && dst.ep.network === ep.network ? dst.ep.mac : undefined;
  }
  const r = await dp.explain(q);
  const into = r.delivered === 'sandbox' && r.via ? sandboxes.find((s) => s.endpoints.some((e) => e.hostIf === r.via)) : undefined;
  const words: string[] = [];
  if (r.verdict === 'drop') {
    words.push(`dropped: ${r.reasonText}`);
    const sn = src.ep && netName(src.ep.network);
    const dn = dst.ep && netName(dst.ep.network);
    if (r.reason === 'icc') words.push(`(network '${sn}' has icc=false, and no link lets ${src.label} open ${port}/${proto} on ${dst.label})`);
    if (r.reason === 'isolation' && sn && dn) words.push(`(${src.label} is on '${sn}', ${dst.label} on '${dn}')`);
    if (r.reason === 'internal') words.push(`(network '${sn}' is internal)`);
  } else {
    words.push(`passes: ${r.ruleText}`);
    if (r.translated) words.push(`; leaves as ${r.translated.src}:${r.translated.sport} -> ${r.translated.dst}:${r.translated.dport}`);
    if (into) words.push(`; delivered into sandbox '${into.name}'`);
    else if (r.delivered === 'outside') words.push(`; sent out of ${r.via}`);
    else if (r.delivered === 'host') words.push('; handed to the host');
  }
  return {
    from: src.label, to: dst.label, proto, ...(port ? { port } : {}), ...r, ...(into ? { sandbox: into.name } : {}),
    explanation: words.join(' ').replace(/ ;/g, ';'),
  };
}
