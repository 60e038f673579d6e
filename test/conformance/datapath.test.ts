/**
 * The datapath conformance suite: one table of cases, run against every
 * datapath named in BERTH_CONFORMANCE_DATAPATHS (default: iptables,nftables,bpf), first
 * with berthd running, then again after berthd was SIGKILLed (the datapath
 * must keep working without it). Each case sends real packets between test
 * namespaces and asserts what the server saw (the client's address, the port
 * it was reached on). Every "blocked" case names a control that must reach
 * first, so a blocked probe is known to have had a chance; crafted packets are
 * also seen leaving the sender's interface.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { run } from '../../src/exec.js';
import { ApiClient } from '../../src/api/client.cjs';
import { projectPath } from '../../src/paths.js';
import { EXT2, HOST_ALT, SCTP, UPLINK6, World, type ProbeResult, type WorldSpec } from '../helpers/conformance.js';
import { DATAPATHS } from '../helpers/datapaths.js';

const SPEC: WorldSpec = {
  networks: [
    { name: 'front', args: ['--subnet', '10.80.0.0/24'] },
    { name: 'back', args: ['--subnet', '10.81.0.0/24'] },
    { name: 'quiet', args: ['--subnet', '10.82.0.0/24', '-o', 'icc=false'] },
    { name: 'intern', args: ['--subnet', '10.83.0.0/24', '--internal'] },
    { name: 'dual', args: ['--ipv6', '--subnet', '10.84.0.0/24', '--subnet', 'fd00:84::/64'] },
  ],
  sandboxes: [
    {
      name: 'f1', network: 'front',
      args: ['-p', '8080:80', '-p', '8081-8083:81-83', '-p', '5353:53/udp', '-p', `${UPLINK.host}:8090:90`, '-p', '127.0.0.1:8091:91', '-p', '127.0.0.1:8092:92/udp', '-p', '9132:132/sctp'],
    },
    { name: 'f2', network: 'front' },
    { name: 's1', network: 'front' },
    { name: 'm1', network: 'front' },
    { name: 'g1', network: 'front', args: ['-p', '8095:95', '-p', '8096:96/udp', '--publish-allow', `${UPLINK.ext}/32`] },
    { name: 'b1', network: 'back' },
    { name: 'b2', network: 'back' },
    { name: 'q1', network: 'quiet', args: ['--expose', '5432', '--expose', '53/udp'] },
    { name: 'q2', network: 'quiet', args: ['--link', 'q1'] },
    { name: 'q3', network: 'quiet' },
    { name: 'i1', network: 'intern' },
    { name: 'i2', network: 'intern' },
    { name: 'd1', network: 'dual', args: ['-p', '8086:86'] },
    { name: 'd2', network: 'dual' },
  ],
  listen: { tcp: [80, 81, 82, 83, 86, 90, 91, 95, 5432, 7000], udp: [53, 92, 96, 7000] },
};

const FOREIGN = '10.80.0.200';
const FOREIGN6 = 'fd00:84::99';
const SPOOF_MAC = '02:66:66:66:66:66';

type Addr = (w: World) => string;
const v4 = (n: string): Addr => (w) => w.sb(n).v4;
const v6 = (n: string): Addr => (w) => w.sb(n).v6!;
const gw = (n: string): Addr => (w) => w.sb(n).gateway;
const ll = (n: string): Addr => () => `${linkLocal.get(n)}%eth0`;
const at = (a: string): Addr => () => a;

interface Case {
  id: string;
  what: string;
  from: string;
  proto: 'ping' | 'tcp' | 'udp' | 'sctp';
  to: Addr;
  port?: number;
  src?: Addr;
  expect: 'reach' | 'blocked';
  /** the client address the server must see */
  sees?: Addr;
  /** the agent and port that serve: a reply must come from them; a blocked probe must not reach them */
  server?: { agent: string; port: number };
  /** blocked: a case that must reach, run first */
  control?: string;
  /** blocked: the packet must be seen leaving this interface of the sender */
  wire?: string;
}

const reach = (c: Omit<Case, 'expect'>): Case => ({ ...c, expect: 'reach' });
const blocked = (c: Omit<Case, 'expect'> & { control: string }): Case => ({ ...c, expect: 'blocked' });

const CASES: Case[] = [
  // same network
  reach({ id: 'same.ping', what: 'ping within a network', from: 'f1', proto: 'ping', to: v4('f2') }),
  reach({ id: 'same.tcp', what: 'TCP within a network keeps the source', from: 'f1', proto: 'tcp', to: v4('f2'), port: 7000, sees: v4('f1'), server: { agent: 'f2', port: 7000 } }),
  reach({ id: 'same.udp', what: 'UDP within a network keeps the source', from: 'f1', proto: 'udp', to: v4('f2'), port: 7000, sees: v4('f1'), server: { agent: 'f2', port: 7000 } }),
  reach({ id: 'back.ping', what: 'ping within the other network', from: 'b2', proto: 'ping', to: v4('b1') }),
  reach({ id: 'back.tcp', what: 'TCP within the other network', from: 'b2', proto: 'tcp', to: v4('b1'), port: 7000, sees: v4('b2'), server: { agent: 'b1', port: 7000 } }),
  reach({ id: 'back.udp', what: 'UDP within the other network', from: 'b2', proto: 'udp', to: v4('b1'), port: 7000, sees: v4('b2'), server: { agent: 'b1', port: 7000 } }),
  // different networks
  blocked({ id: 'cross.ping', what: 'no ping between networks', from: 'f1', proto: 'ping', to: v4('b1'), control: 'back.ping' }),
  blocked({ id: 'cross.tcp', what: 'no TCP between networks', from: 'f1', proto: 'tcp', to: v4('b1'), port: 7000, server: { agent: 'b1', port: 7000 }, control: 'back.tcp' }),
  blocked({ id: 'cross.udp', what: 'no UDP between networks', from: 'f1', proto: 'udp', to: v4('b1'), port: 7000, server: { agent: 'b1', port: 7000 }, control: 'back.udp' }),
  // to the outside
  reach({ id: 'out.ping', what: 'ping to the outside', from: 'f1', proto: 'ping', to: at(UPLINK.ext) }),
  reach({ id: 'out.tcp', what: 'TCP to the outside is masqueraded', from: 'f1', proto: 'tcp', to: at(UPLINK.ext), port: 7000, sees: at(UPLINK.host), server: { agent: 'ext', port: 7000 } }),
  reach({ id: 'out.udp', what: 'UDP to the outside is masqueraded', from: 'f1', proto: 'udp', to: at(UPLINK.ext), port: 7000, sees: at(UPLINK.host), server: { agent: 'ext', port: 7000 } }),
  // published ports from outside
  reach({ id: 'pub.tcp', what: 'published TCP port, client source kept', from: 'ext', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: at(UPLINK.ext), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'pub.range.first', what: 'first port of a published range', from: 'ext', proto: 'tcp', to: at(UPLINK.host), port: 8081, sees: at(UPLINK.ext), server: { agent: 'f1', port: 81 } }),
  reach({ id: 'pub.range.last', what: 'last port of a published range', from: 'ext', proto: 'tcp', to: at(UPLINK.host), port: 8083, sees: at(UPLINK.ext), server: { agent: 'f1', port: 83 } }),
  reach({ id: 'pub.udp', what: 'published UDP port', from: 'ext', proto: 'udp', to: at(UPLINK.host), port: 5353, sees: at(UPLINK.ext), server: { agent: 'f1', port: 53 } }),
  reach({ id: 'pub.sctp', what: 'published SCTP port (an INIT over a raw socket)', from: 'ext', proto: 'sctp', to: at(UPLINK.host), port: 9132, sees: at(UPLINK.ext), server: { agent: 'f1', port: 132 } }),
  reach({ id: 'pub.ext2', what: 'published port from a second outside network, its source kept', from: 'ext2', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: at(EXT2.ext2), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'pub.alt', what: 'an all-address publish answers on the host\'s second address', from: 'ext', proto: 'tcp', to: at(HOST_ALT), port: 8080, sees: at(UPLINK.ext), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'pub.hostip', what: 'host-IP-bound publish on its address', from: 'ext', proto: 'tcp', to: at(UPLINK.host), port: 8090, sees: at(UPLINK.ext), server: { agent: 'f1', port: 90 } }),
  blocked({ id: 'pub.hostip.other', what: 'host-IP-bound publish not on another host address', from: 'ext', proto: 'tcp', to: at(HOST_ALT), port: 8090, server: { agent: 'f1', port: 90 }, control: 'pub.alt' }),
  blocked({ id: 'pub.lo.ext', what: '127.0.0.1-bound publish not on the uplink address', from: 'ext', proto: 'tcp', to: at(UPLINK.host), port: 8091, server: { agent: 'f1', port: 91 }, control: 'pub.tcp' }),
  blocked({ id: 'pub.lo.crafted.tcp', what: '127.0.0.1-bound publish not from outside with packets to 127.0.0.1', from: 'ext', proto: 'tcp', to: at('127.0.0.1'), port: 8091, server: { agent: 'f1', port: 91 }, wire: 'eth0', control: 'host.lo.tcp' }),
  blocked({ id: 'pub.lo.crafted.udp', what: '127.0.0.1-bound UDP publish not from outside with packets to 127.0.0.1', from: 'ext', proto: 'udp', to: at('127.0.0.1'), port: 8092, server: { agent: 'f1', port: 92 }, wire: 'eth0', control: 'host.lo.udp' }),
  blocked({ id: 'pub.direct', what: 'no direct routing to a sandbox address from outside', from: 'ext', proto: 'tcp', to: v4('f1'), port: 80, server: { agent: 'f1', port: 80 }, control: 'pub.tcp' }),
  // the host itself
  reach({ id: 'host.lo.tcp', what: 'host -> 127.0.0.1:published port without a proxy', from: 'host', proto: 'tcp', to: at('127.0.0.1'), port: 8091, sees: gw('f1'), server: { agent: 'f1', port: 91 } }),
  reach({ id: 'host.lo.udp', what: 'host -> 127.0.0.1:published UDP port', from: 'host', proto: 'udp', to: at('127.0.0.1'), port: 8092, sees: gw('f1'), server: { agent: 'f1', port: 92 } }),
  reach({ id: 'host.lo.all', what: 'host -> 127.0.0.1 of an all-address publish', from: 'host', proto: 'tcp', to: at('127.0.0.1'), port: 8080, sees: gw('f1'), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'host.uplink', what: 'host -> its own uplink address:published port keeps that source', from: 'host', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: at(UPLINK.host), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'host.svc', what: 'a sandbox reaches a host service on the uplink address', from: 'f1', proto: 'tcp', to: at(UPLINK.host), port: 7002, sees: v4('f1'), server: { agent: 'host', port: 7002 } }),
  reach({ id: 'host.lo.svc', what: 'the host reaches its own loopback service', from: 'host', proto: 'udp', to: at('127.0.0.1'), port: 7001, server: { agent: 'host', port: 7001 } }),
  blocked({ id: 'host.lo.fromsandbox', what: 'a sandbox cannot reach the host\'s loopback (route_localnet is on for bridges)', from: 's1', proto: 'udp', to: at('127.0.0.1'), port: 7001, server: { agent: 'host', port: 7001 }, wire: 'eth0', control: 'host.lo.svc' }),
  // hairpin
  reach({ id: 'hairpin.other', what: 'sandbox -> host address:published port -> another sandbox, source kept', from: 'f2', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: v4('f2'), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'hairpin.self', what: 'sandbox -> its own published port through the host', from: 'f1', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: gw('f1'), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'hairpin.cross', what: 'a sandbox of another network reaches a published port, source kept', from: 'b1', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: v4('b1'), server: { agent: 'f1', port: 80 } }),
  reach({ id: 'hairpin.udp', what: 'UDP hairpin', from: 'f2', proto: 'udp', to: at(UPLINK.host), port: 5353, sees: v4('f2'), server: { agent: 'f1', port: 53 } }),
  // icc=false and links
  reach({ id: 'link.tcp', what: 'a linked client opens the exposed TCP port', from: 'q2', proto: 'tcp', to: v4('q1'), port: 5432, sees: v4('q2'), server: { agent: 'q1', port: 5432 } }),
  reach({ id: 'link.udp', what: 'a linked client reaches the exposed UDP port and gets replies', from: 'q2', proto: 'udp', to: v4('q1'), port: 53, sees: v4('q2'), server: { agent: 'q1', port: 53 } }),
  blocked({ id: 'icc.nolink', what: 'icc=false: no link, no way', from: 'q3', proto: 'tcp', to: v4('q1'), port: 5432, server: { agent: 'q1', port: 5432 }, control: 'link.tcp' }),
  blocked({ id: 'icc.ping', what: 'icc=false: no ping even between linked sandboxes', from: 'q2', proto: 'ping', to: v4('q1'), control: 'same.ping' }),
  blocked({ id: 'link.otherport', what: 'a link opens only the exposed port', from: 'q2', proto: 'tcp', to: v4('q1'), port: 7000, server: { agent: 'q1', port: 7000 }, control: 'link.tcp' }),
  blocked({ id: 'link.reverse', what: 'the target cannot open connections to the linker', from: 'q1', proto: 'tcp', to: v4('q2'), port: 5432, server: { agent: 'q2', port: 5432 }, control: 'link.tcp' }),
  blocked({ id: 'link.reverse.udp', what: 'the target cannot send new UDP flows to the linker', from: 'q1', proto: 'udp', to: v4('q2'), port: 7000, server: { agent: 'q2', port: 7000 }, control: 'link.udp' }),
  reach({ id: 'icc.hairpin', what: 'icc=false sandboxes still reach published ports', from: 'q3', proto: 'tcp', to: at(UPLINK.host), port: 8080, sees: v4('q3'), server: { agent: 'f1', port: 80 } }),
  // internal networks
  reach({ id: 'internal.same', what: 'inside an internal network', from: 'i1', proto: 'tcp', to: v4('i2'), port: 7000, sees: v4('i1'), server: { agent: 'i2', port: 7000 } }),
  reach({ id: 'internal.gateway', what: 'an internal network reaches its gateway (where its DNS listens)', from: 'i1', proto: 'tcp', to: gw('i1'), port: 7002, sees: v4('i1'), server: { agent: 'host', port: 7002 } }),
  blocked({ id: 'internal.out', what: 'an internal network does not reach the outside (even with a route)', from: 'i1', proto: 'tcp', to: at(UPLINK.ext), port: 7000, server: { agent: 'ext', port: 7000 }, control: 'out.tcp' }),
  blocked({ id: 'internal.host', what: 'an internal network does not reach the host\'s uplink address', from: 'i1', proto: 'tcp', to: at(UPLINK.host), port: 7002, server: { agent: 'host', port: 7002 }, control: 'host.svc' }),
  blocked({ id: 'internal.published', what: 'an internal network does not reach published ports through the host', from: 'i1', proto: 'tcp', to: at(UPLINK.host), port: 8080, server: { agent: 'f1', port: 80 }, control: 'hairpin.cross' }),
  blocked({ id: 'internal.published.gw', what: '... nor through its own gateway address', from: 'i1', proto: 'tcp', to: gw('i1'), port: 8080, server: { agent: 'f1', port: 80 }, control: 'hairpin.cross' }),
  blocked({ id: 'internal.in', what: 'other networks do not reach into an internal one', from: 'f1', proto: 'tcp', to: v4('i1'), port: 7000, server: { agent: 'i1', port: 7000 }, control: 'internal.same' }),
  blocked({ id: 'internal.direct', what: 'the outside does not reach into an internal one', from: 'ext', proto: 'tcp', to: v4('i1'), port: 7000, server: { agent: 'i1', port: 7000 }, control: 'internal.same' }),
  // source allow-lists
  reach({ id: 'allow.listed', what: 'an allowed source reaches an allow-listed publish', from: 'ext', proto: 'tcp', to: at(UPLINK.host), port: 8095, sees: at(UPLINK.ext), server: { agent: 'g1', port: 95 } }),
  reach({ id: 'allow.listed.udp', what: 'an allowed source reaches an allow-listed UDP publish', from: 'ext', proto: 'udp', to: at(UPLINK.host), port: 8096, sees: at(UPLINK.ext), server: { agent: 'g1', port: 96 } }),
  blocked({ id: 'allow.unlisted', what: 'a source not listed does not', from: 'ext2', proto: 'tcp', to: at(UPLINK.host), port: 8095, server: { agent: 'g1', port: 95 }, control: 'pub.ext2' }),
  blocked({ id: 'allow.unlisted.udp', what: 'a source not listed does not (UDP)', from: 'ext2', proto: 'udp', to: at(UPLINK.host), port: 8096, server: { agent: 'g1', port: 96 }, control: 'pub.ext2' }),
  blocked({ id: 'allow.hairpin', what: 'a sandbox is not a listed source either', from: 'f2', proto: 'tcp', to: at(UPLINK.host), port: 8095, server: { agent: 'g1', port: 95 }, control: 'hairpin.other' }),
  // spoofing
  reach({ id: 'spoof.own', what: 'a sandbox sending from its own address', from: 's1', proto: 'udp', to: v4('f1'), port: 7000, sees: v4('s1'), server: { agent: 'f1', port: 7000 } }),
  blocked({ id: 'spoof.foreign', what: 'a sandbox cannot send from an address not its own', from: 's1', proto: 'udp', to: v4('f1'), port: 7000, src: at(FOREIGN), server: { agent: 'f1', port: 7000 }, control: 'spoof.own' }),
  blocked({ id: 'spoof.neighbour', what: 'nor from another sandbox\'s address', from: 's1', proto: 'udp', to: v4('f1'), port: 7000, src: v4('f2'), server: { agent: 'f1', port: 7000 }, control: 'spoof.own' }),
  blocked({ id: 'spoof.out', what: 'a spoofed source is not masqueraded out either', from: 's1', proto: 'udp', to: at(UPLINK.ext), port: 7000, src: at(FOREIGN), server: { agent: 'ext', port: 7000 }, control: 'out.udp' }),
  blocked({ id: 'spoof.mac', what: 'a sandbox cannot send with a MAC not its own', from: 'm1', proto: 'udp', to: v4('f1'), port: 7000, server: { agent: 'f1', port: 7000 }, wire: 'eth0', control: 'same.udp' }),
  // IPv6
  reach({ id: 'v6.same.tcp', what: 'IPv6 TCP within a dual-stack network', from: 'd1', proto: 'tcp', to: v6('d2'), port: 7000, sees: v6('d1'), server: { agent: 'd2', port: 7000 } }),
  reach({ id: 'v6.same.udp', what: 'IPv6 UDP within a dual-stack network', from: 'd2', proto: 'udp', to: v6('d1'), port: 7000, sees: v6('d2'), server: { agent: 'd1', port: 7000 } }),
  reach({ id: 'v6.same.ping', what: 'IPv6 ping within a dual-stack network', from: 'd1', proto: 'ping', to: v6('d2') }),
  reach({ id: 'v6.linklocal', what: 'IPv6 link-local within a dual-stack network', from: 'd1', proto: 'udp', to: ll('d2'), port: 7000, server: { agent: 'd2', port: 7000 } }),
  reach({ id: 'v6.out', what: 'IPv6 to the outside is masqueraded', from: 'd1', proto: 'tcp', to: at(UPLINK6.ext), port: 7000, sees: at(UPLINK6.host), server: { agent: 'ext', port: 7000 } }),
  reach({ id: 'v6.pub', what: 'IPv6 published port from outside, source kept', from: 'ext', proto: 'tcp', to: at(UPLINK6.host), port: 8086, sees: at(UPLINK6.ext), server: { agent: 'd1', port: 86 } }),
  reach({ id: 'v6.hairpin', what: 'IPv6 hairpin, source kept', from: 'd2', proto: 'tcp', to: at(UPLINK6.host), port: 8086, sees: v6('d2'), server: { agent: 'd1', port: 86 } }),
  blocked({ id: 'v6.direct', what: 'no direct IPv6 routing to a sandbox from outside', from: 'ext', proto: 'tcp', to: v6('d1'), port: 86, server: { agent: 'd1', port: 86 }, control: 'v6.pub' }),
  blocked({ id: 'v6.spoof', what: 'no IPv6 from an address not the sandbox\'s', from: 'd2', proto: 'udp', to: v6('d1'), port: 7000, src: at(FOREIGN6), server: { agent: 'd1', port: 7000 }, control: 'v6.same.udp' }),
  blocked({ id: 'v6.v4only', what: 'IPv6 on an IPv4-only network is dropped, not a way around policy', from: 'f1', proto: 'udp', to: ll('f2'), port: 7000, server: { agent: 'f2', port: 7000 }, control: 'v6.linklocal' }),
];

const linkLocal = new Map<string, string>();
const byId = new Map(CASES.map((c) => [c.id, c]));
for (const c of CASES) if (c.control && !byId.has(c.control)) throw new Error(`case ${c.id}: unknown control '${c.control}'`);

let tokens = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(w: World, c: Case, token: string): Promise<ProbeResult> {
  const from = w.agent(c.from);
  const host = c.to(w);
  const src = c.src?.(w);
  if (c.proto === 'ping') {
    const r = await from.exec('ping', ['-c', '1', '-W', '1', ...(src ? ['-I', src] : []), host], 3000);
    return { ok: r.code === 0, ...(r.code ? { error: r.stdout.split('\n').find((l) => /loss/.test(l)) ?? r.stderr } : {}) };
  }
  if (c.proto === 'sctp') {
    const srv = c.server!;
    const listening = w.agent(srv.agent).exec('python3', [SCTP, 'listen', String(srv.port), '1.5'], 4000);
    await sleep(300);
    await from.sh('python3', SCTP, 'send', host, String(c.port));
    const r = await listening;
    if (r.code !== 0) return { ok: false, error: `no SCTP packet arrived (${r.stderr.trim() || r.code})` };
    const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as { src: string; dst: string; sport: number; dport: number };
    return { ok: true, reply: { by: srv.agent, peer: p.src, peerPort: p.sport, local: p.dst, localPort: p.dport } };
  }
  return from.probe(c.proto, host, c.port!, { ...(src ? { src } : {}), token });
}

interface Explained {
  verdict: 'pass' | 'drop';
  delivered: string;
  sandbox?: string;
  explanation: string;
}

/**
 * `berth explain` for a case, before its packets: the datapath's own answer
 * must agree with what the packets then do, on both datapaths (explain needs berthd).
 */
async function explainAgrees(w: World, c: Case): Promise<void> {
  const to = c.to(w);
  const src = c.from === 'ext' ? `external:${to.includes(':') ? UPLINK6.ext : UPLINK.ext}` : c.from === 'ext2' ? `external:${EXT2.ext2}` : c.from;
  const body = {
    src, dst: to.replace(/%.*$/, ''), proto: c.proto === 'ping' ? 'icmp' : c.proto, ...(c.port ? { port: c.port } : {}),
    ...(c.src ? { srcIp: c.src(w) } : {}), ...(c.id === 'spoof.mac' ? { srcMac: SPOOF_MAC } : {}),
  };
  const e = await new ApiClient(w.h.socket).call<Explained>('POST', '/v1/explain', body);
  const say = `${c.id}: explain ${JSON.stringify(body)} said ${JSON.stringify(e)}`;
  const server = c.server?.agent;
  if (c.expect === 'reach') {
    expect(e.verdict, say).toBe('pass');
    if (server === 'host') expect(e.delivered, say).toBe('host');
    else if (server === 'ext') expect(e.delivered, say).toBe('outside');
    // A link-local neighbour is reached through the bridge (the host's side of the datapath).
    else if (server && to.includes('%')) expect(e.delivered, say).toBe('host');
    else if (server) expect(e.sandbox, say).toBe(server);
  } else if (server && server !== 'ext' && server !== 'host') {
    expect(e.sandbox ?? null, say).not.toBe(server);
  } else {
    expect(e.verdict, say).toBe('drop');
  }
}

async function expectReach(w: World, c: Case): Promise<void> {
  const r = await send(w, c, `t${++tokens}`);
  expect(r.ok, `${c.id}: ${c.from} -> ${c.to(w)}${c.port ? `:${c.port}` : ''}/${c.proto} should reach (${r.error})`).toBe(true);
  if (c.server) expect([r.reply?.by, r.reply?.localPort], `${c.id}: answered by`).toEqual([c.server.agent, c.server.port]);
  if (c.sees) expect(r.reply?.peer, `${c.id}: client address seen by the server`).toBe(c.sees(w));
  const sb = c.server && w.sandboxes.get(c.server.agent);
  if (sb && r.reply?.local) expect([sb.v4, sb.v6], `${c.id}: destination seen by the server`).toContain(r.reply.local);
}

async function expectBlocked(w: World, c: Case): Promise<void> {
  await expectReach(w, byId.get(c.control!)!);
  const token = `t${++tokens}`;
  const srv = c.server && w.agent(c.server.agent);
  const before = srv && c.proto === 'tcp' ? await srv.accepted(c.server!.port) : 0;
  const tx = c.wire ? await w.agent(c.from).txPackets(c.wire) : 0;
  const r = await send(w, c, token);
  expect(r.ok, `${c.id}: ${c.from} -> ${c.to(w)}${c.port ? `:${c.port}` : ''}/${c.proto} must not reach (reply ${JSON.stringify(r.reply)})`).toBe(false);
  if (srv && c.proto === 'tcp') expect(await srv.accepted(c.server!.port), `${c.id}: connections accepted by ${c.server!.agent}`).toBe(before);
  if (srv && c.proto === 'udp') expect(await srv.seen(token), `${c.id}: datagram seen by ${c.server!.agent}`).toBeNull();
  if (c.wire) expect(await w.agent(c.from).txPackets(c.wire), `${c.id}: the crafted packet left ${c.from}/${c.wire}`).toBeGreaterThan(tx);
}

/** Link-local addresses are usable once DAD is over. */
async function linkLocalOf(w: World, name: string): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const j = JSON.parse(await w.agent(name).sh('ip', '-6', '-j', 'addr', 'show', 'dev', 'eth0')) as { addr_info: { local?: string; scope?: string; tentative?: boolean }[] }[];
    const a = j[0]?.addr_info.find((x) => x.local && x.scope === 'link' && !x.tentative);
    if (a) return a.local!;
    await sleep(100);
  }
  throw new Error(`${name}: no usable link-local address`);
}

describe.each(DATAPATHS)('the %s datapath', (datapath) => {
  let w: World;

  beforeAll(async () => {
    w = await World.build(datapath, SPEC);
    const ext = w.agent('ext');
    const host = w.agent('host');
    await host.listen('udp', 7001, '127.0.0.1');
    await host.listen('tcp', 7002);
    await ext.listen('tcp', 7000);
    await ext.listen('udp', 7000);
    // Crafted packets: ext sends to 127.0.0.1 through the host, and routes sandbox subnets to it directly.
    await ext.sh('ip', 'addr', 'del', '127.0.0.1/8', 'dev', 'lo');
    await ext.sh('ip', 'route', 'add', '127.0.0.1/32', 'via', UPLINK.host);
    for (const sn of ['10.80.0.0/24', '10.83.0.0/24']) await ext.sh('ip', 'route', 'add', sn, 'via', UPLINK.host);
    await ext.sh('ip', '-6', 'route', 'add', 'fd00:84::/64', 'via', UPLINK6.host);
    // The internal network's sandboxes get a way out, so that the datapath is what stops them.
    await w.agent('i1').sh('ip', 'route', 'add', 'default', 'via', w.sb('i1').gateway);
    // s1 owns two addresses that are not its own, and sends to 127.0.0.1 through its gateway.
    const s1 = w.agent('s1');
    await s1.sh('ip', 'addr', 'add', `${FOREIGN}/32`, 'dev', 'eth0');
    await s1.sh('ip', 'addr', 'add', `${w.sb('f2').v4}/32`, 'dev', 'eth0');
    await s1.sh('ip', 'addr', 'del', '127.0.0.1/8', 'dev', 'lo');
    await s1.sh('ip', 'route', 'add', '127.0.0.1/32', 'via', w.sb('s1').gateway);
    // Deprecated, so that d2 does not pick it as the source of its own traffic.
    await w.agent('d2').sh('ip', 'addr', 'add', `${FOREIGN6}/128`, 'dev', 'eth0', 'nodad', 'preferred_lft', '0');
    // m1 sends with a MAC not its own, to a neighbour it knows without ARP.
    const m1 = w.agent('m1');
    await m1.sh('ip', 'link', 'set', 'dev', 'eth0', 'address', SPOOF_MAC);
    await m1.sh('ip', 'neigh', 'replace', w.sb('f1').v4, 'lladdr', w.sb('f1').mac, 'dev', 'eth0', 'nud', 'permanent');
    for (const n of ['f1', 'f2', 'd1', 'd2']) linkLocal.set(n, await linkLocalOf(w, n));
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  describe.each(['berthd running', 'berthd killed'])('with %s', (mode) => {
    beforeAll(async () => {
      if (mode !== 'berthd killed') return;
      await w.h.kill('SIGKILL');
      expect(w.h.proc).toBeUndefined();
      expect((await w.h.berthTry('ps')).code).not.toBe(0);
    });

    it.each(CASES)('$id: $what', async (c) => {
      if (mode === 'berthd running') await explainAgrees(w, c);
      if (c.expect === 'reach') await expectReach(w, c);
      else await expectBlocked(w, c);
    });
    if (datapath === 'iptables' && mode === 'berthd running') {
      it('explain on iptables shows the kernel\'s own trace, and its real packet leaves nothing behind: no connection entry, nothing delivered, no trace table or interface', async () => {
        const api = new ApiClient(w.h.socket);
        const host = w.agent('host');
        const f1 = w.agent('f1');
        const entries = async () => (await host.sh('conntrack', '-L', '-p', 'tcp', '--orig-port-src', '40000', '--orig-port-dst', '8080')).split('\n').filter((l) => l.includes('sport=40000')).length;
        const before = await f1.accepted(80);
        const e = await api.call<Explained & { rule: string; trace: string[]; translated?: { dst: string; dport: number } }>('POST', '/v1/explain', { src: `external:${UPLINK.ext}`, dst: UPLINK.host, proto: 'tcp', port: 8080 });
        expect([e.verdict, e.rule, e.sandbox]).toEqual(['pass', 'publish', 'f1']);
        expect([e.translated?.dst, e.translated?.dport]).toEqual([w.sb('f1').v4, 80]);
        expect(e.trace.some((l) => /-A BERTH-DNAT .*--dport 8080 -j DNAT --to-destination /.test(l)), e.trace.join('\n')).toBe(true);
        expect(e.trace.some((l) => /-A BERTH-PUBLISH .* -j ACCEPT$/.test(l)), e.trace.join('\n')).toBe(true);
        // A drop names berth's rule: icc=false without a link; and that while the operator traces all traffic for themselves, and there is traffic.
        await host.sh('nft', 'add table inet operator_trace; add chain inet operator_trace pre { type filter hook prerouting priority -400; }; add rule inet operator_trace pre meta nftrace set 1');
        const pings = w.agent('ext').exec('ping', ['-c', '120', '-i', '0.025', UPLINK.host], 10_000);
        try {
          const d = await api.call<Explained & { reason: string; ruleText: string; trace: string[] }>('POST', '/v1/explain', { src: 'q3', dst: w.sb('q1').v4, proto: 'tcp', port: 5432 });
          expect([d.verdict, d.reason]).toEqual(['drop', 'icc']);
          expect(d.ruleText).toMatch(/-A BERTH-ICC -i (\S+) -o \1 -j DROP$/);
          // The operator's own chain is on the packet's way (and so in its trace); the pings traced meanwhile are not.
          expect(d.trace, d.trace.join('\n')).toContain('nft inet operator_trace chain pre: meta nftrace set 1 (continue)');
          expect(d.trace.join('\n')).not.toMatch(/INPUT|icmp/);
          // A packet the kernel drops outside the rules (to 127.0.0.1 from outside) ends its trace by going quiet: the pings do not keep it open or get into it.
          const k = await api.call<Explained & { reason: string; trace: string[] }>('POST', '/v1/explain', { src: `external:${UPLINK.ext}`, dst: '127.0.0.1', proto: 'tcp', port: 8091 });
          expect([k.verdict, k.reason]).toEqual(['drop', 'kernel']);
          expect(k.trace.join('\n'), k.trace.join('\n')).not.toMatch(/INPUT|icmp/);
        } finally {
          await pings;
          await host.sh('nft', 'delete table inet operator_trace');
        }
        await sleep(300);
        expect(await entries()).toBe(0);
        expect(await f1.accepted(80)).toBe(before);
        expect(await host.sh('nft', 'list', 'tables')).not.toContain('berth_explain');
        expect(await host.sh('ip', '-br', 'link')).not.toMatch(/^berthx[io]/m);
        // With strict reverse-path filtering, the stand-in for the uplink drops a made-up outside source: the answer says why it may not be the uplink's.
        const rp = (await host.sh('sysctl', '-n', 'net.ipv4.conf.all.rp_filter')).trim();
        await host.sh('sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1');
        try {
          const strict = await api.call<Explained & { reason: string; reasonText: string }>('POST', '/v1/explain', { src: `external:${UPLINK.ext}`, dst: UPLINK.host, proto: 'tcp', port: 8080 });
          expect([strict.verdict, strict.reason]).toEqual(['drop', 'kernel']);
          expect(strict.reasonText).toContain('net.ipv4.conf.all.rp_filter=1');
        } finally {
          await host.sh('sysctl', '-qw', `net.ipv4.conf.all.rp_filter=${rp}`);
        }
        // The CLI prints the trace under its answer.
        const cli = await w.h.berthTry('explain', 'q3', w.sb('q1').v4, '--port', '5432');
        expect(cli.code).toBe(1);
        expect(cli.stdout).toMatch(/^q3 -> q1 \(\S+\) 5432\/tcp: DROP \(icc\)\n {2}dropped: .*\n {2}the kernel's trace, rule by rule:\n(?: {4}.*\n)* {4}iptables -t filter -A BERTH-ICC -i (\S+) -o \1 -j DROP\n$/);
        // The host's own IPv6 packet (a raw socket: the OUTPUT hooks), then the same for real.
        const h6 = await api.call<Explained & { rule: string; translated?: { dst: string; dport: number } }>('POST', '/v1/explain', { src: 'host', dst: UPLINK6.host, proto: 'tcp', port: 8086 });
        expect([h6.verdict, h6.rule, h6.sandbox, h6.translated?.dst, h6.translated?.dport]).toEqual(['pass', 'publish', 'd1', w.sb('d1').v6, 86]);
        const real6 = await host.probe('tcp', UPLINK6.host, 8086);
        expect([real6.ok, real6.reply?.by, real6.reply?.localPort]).toEqual([true, 'd1', 86]);
        // ... while the same packet for real does leave an entry (the check above can fail).
        await expectReach(w, byId.get('pub.tcp')!);
        expect((await host.sh('conntrack', '-L', '-p', 'tcp', '--orig-port-dst', '8080')).split('\n').filter((l) => l.includes('dport=8080')).length).toBeGreaterThan(0);
      });
    }
  });

  it('berth doctor shows the verdict counters of the pinned datapath, by reason', async () => {
    const r = await run(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.cjs'), 'doctor', '--format', 'json', ...(w.h.bpffs ? ['--bpffs', w.h.bpffs.path] : [])]);
    const d = (JSON.parse(r.stdout) as { drops: { byReason: Record<string, { packets: number }> } | null }).drops;
    if (datapath !== 'bpf') {
      expect(d).toBeNull();
      return;
    }
    // Each of these was provoked by a blocked case above.
    for (const reason of ['icc', 'isolation', 'internal', 'spoof-ip', 'spoof-mac', 'allowlist', 'loopback', 'direct', 'family']) {
      expect(d?.byReason[reason]?.packets ?? 0, reason).toBeGreaterThan(0);
    }
  });

  it('[::1]:published port: reached on bpf (lo egress translates it), refused at once on iptables and nftables (no route_localnet for IPv6)', async () => {
    const r = await w.agent('host').probe('tcp', '::1', 8086);
    if (datapath === 'iptables' || datapath === 'nftables') {
      expect(r.error).toBe('ECONNREFUSED');
      return;
    }
    expect(r.ok, r.error).toBe(true);
    expect([r.reply?.by, r.reply?.localPort, r.reply?.local]).toEqual(['d1', 86, w.sb('d1').v6]);
    // The sandbox cannot answer ::1: it sees its IPv6 gateway.
    expect(r.reply?.peer).toBe('fd00:84::1');
  });
});
