/**
 * `berth explain` on the iptables datapath, with the kernel's own means: a
 * crafted packet is sent for real and nf_tables' trace follows it through
 * every rule it meets (berth's, and anybody else's), as `nft monitor trace`
 * prints it; each rule is then named as iptables-save writes it (the same
 * position in its chain). Nothing is changed by the packet:
 *  - a table of berth's, `berth_explain` (bridge and inet), turns tracing on
 *    for that one packet (matched on its addresses, protocol, ports, its
 *    IPv4 identification or IPv6 flow label and an unusual TTL) at priority
 *    -350, before raw and conntrack; no skb mark is set, which policy routing
 *    or others' rules could see;
 *  - the same table drops it at priority 500 of postrouting and input
 *    (matched on its protocol, its identification or flow label and its
 *    unusual TTL, which translation leaves alone), after every verdict and
 *    translation of berth's but before conntrack confirms the connection, so
 *    no connection entry stays and the packet is never delivered;
 *  - the table is removed afterwards.
 * Where the packet starts: a sandbox's frame is written to its interface
 * inside the sandbox; the host's own packet goes out of a raw socket; an
 * outside packet arrives on a temporary veth pair (the uplink itself cannot
 * be made to receive a packet), which berth's rules do not tell from an
 * uplink: they match bridges and lo, never the uplink.
 *
 * The parsing and the reading of a trace are pure (parseTrace, readTrace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { familyOf } from '../../ipam/addr.js';
import { addon } from '../../native/addon.js';
import { nl } from '../../netlink/index.js';
import { run } from '../../exec.js';
import { BerthError } from '../../errors.js';
import { dropReasons } from '../../bpf/abi.js';
import type { DesiredDatapath, DpExplainQuery, DpExplainResult } from '../datapath.js';
import { buildPacket, RULES } from '../bpf/explain.js';
import type { Family } from './chains.js';
import { dropReason } from './drops.js';
import type { Saved } from './restore.js';

export const TRACE_TABLE = 'berth_explain';
/** the temporary veth pair of an outside packet: berthxo<6 hex> (sent on) and berthxi<6 hex> (arrives on) */
const VETH = 'berthx';

/** One line of `nft monitor trace`: a packet's headers at a hook, or a rule's or policy's verdict. */
export interface TraceLine {
  kind: 'packet' | 'verdict';
  id: string;
  /** ip, ip6, bridge or inet */
  family: string;
  table: string;
  chain: string;
  /** packet: what it shows of the headers */
  packet?: { iif?: string; oif?: string; src?: string; dst?: string; sport?: number; dport?: number; ipId?: number; flowLabel?: number };
  /** verdicts: rule or policy */
  type?: string;
  handle?: number;
  /** accept, drop, continue, jump, goto, return, ... */
  verdict?: string;
  /** jump/goto: the chain */
  target?: string;
  /** the rule as nft prints it */
  text?: string;
  /** rules of iptables' own tables: the rule as iptables-save writes it, without "-A CHAIN " (filled in by the caller) */
  spec?: string;
}

/** The lines of `nft -a monitor trace` output it understands; others are skipped. */
export function parseTrace(text: string): TraceLine[] {
  const out: TraceLine[] = [];
  for (const raw of text.split('\n')) {
    const m = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (packet:|unknown rule|rule|policy|verdict) ?(.*)$/.exec(raw.trim());
    if (!m) continue;
    const [, id, family, table, chain, type, rest] = m as unknown as [string, string, string, string, string, string, string];
    if (type === 'packet:') {
      const word = (re: RegExp) => re.exec(rest)?.[1];
      const port = (which: string) => {
        const v = word(new RegExp(`(?:^|\\s)(?:tcp|udp|sctp|udplite) ${which} (\\d+)`));
        return v === undefined ? undefined : Number(v);
      };
      const pkt: TraceLine['packet'] = {};
      const iif = word(/(?:^|\s)iif "([^"]+)"/);
      const oif = word(/(?:^|\s)oif "([^"]+)"/);
      const src = word(/(?:^|\s)ip6? saddr (\S+)/);
      const dst = word(/(?:^|\s)ip6? daddr (\S+)/);
      const sport = port('sport');
      const dport = port('dport');
      if (iif) pkt.iif = iif;
      if (oif) pkt.oif = oif;
      if (src) pkt.src = src;
      if (dst) pkt.dst = dst;
      if (sport !== undefined) pkt.sport = sport;
      if (dport !== undefined) pkt.dport = dport;
      const ipId = word(/(?:^|\s)ip id (\d+)/);
      const flowLabel = word(/(?:^|\s)ip6 flowlabel (\d+)/);
      if (ipId !== undefined) pkt.ipId = Number(ipId);
      if (flowLabel !== undefined) pkt.flowLabel = Number(flowLabel);
      out.push({ kind: 'packet', id, family, table, chain, packet: pkt });
      continue;
    }
    // A rule nft did not know when it started (added since, or its table gone already) is "unknown rule handle N".
    const t: TraceLine = { kind: 'verdict', id, family, table, chain, type: type === 'packet:' ? type : type.replace('unknown ', '') };
    if (t.type === 'rule') {
      const v = /^(.*?)(?:(?:^| # )handle (\d+))? \(verdict (\S+)(?: (\S+))?\)$/.exec(rest);
      if (!v) continue;
      t.text = v[1]!;
      if (v[2]) t.handle = Number(v[2]);
      t.verdict = v[3]!;
      if (v[4]) t.target = v[4];
    } else {
      t.verdict = rest.split(/\s+/)[0]!;
    }
    out.push(t);
  }
  return out;
}

/**
 * The lines of the first packet explain sent (marked with @mark: its IPv4
 * identification or IPv6 flow label), from its start. The trace id alone
 * does not follow it, as the kernel gives a packet a new one when it copies
 * it (NAT, bridging); every id's lines begin with the packet's headers, so an
 * id is the packet's when those carry the mark. Lines of other traced packets
 * (anybody's nftrace rules) are left out, and so is a second copy sent while
 * the monitor was not listening yet.
 */
export function onePacket(all: TraceLine[], mark: number): TraceLine[] {
  const ours = (l: TraceLine) => l.kind === 'packet' && (l.packet?.ipId === (mark & 0xffff) || l.packet?.flowLabel === (mark & 0xfffff));
  const first = all.findIndex((l) => l.table === TRACE_TABLE && l.chain === 'start' && ours(l));
  if (first < 0) return [];
  const next = all.findIndex((l, i) => i > first && l.table === TRACE_TABLE && l.chain === 'start' && l.id !== all[first]!.id && ours(l));
  const ids = new Set(all.slice(first, next < 0 ? undefined : next).filter(ours).map((l) => l.id));
  return all.slice(first, next < 0 ? undefined : next).filter((l) => ids.has(l.id));
}

/** A trace is complete once something dropped the packet: berth, another rule, or berth_explain's own stop. */
export function traceDone(lines: TraceLine[]): boolean {
  return lines.some((l) => l.kind === 'verdict' && l.verdict === 'drop');
}

/** What the datapath knows to name where a packet went. */
export interface TraceContext {
  desired?: DesiredDatapath;
  /** where the packet came from (the host's own packets are not berth's to filter) */
  from: DpExplainQuery['from'];
  query: { src: string; dst: string; sport: number; dport: number; proto: string };
}

const FAMILY: Record<string, Family> = { ip: 'ip4', ip6: 'ip6', bridge: 'eb' };
const TOOL: Record<string, string> = { ip: 'iptables', ip6: 'ip6tables', bridge: 'ebtables' };
export const ruleLine = (l: TraceLine) => {
  const tool = TOOL[l.family];
  // Tables iptables does not write (anybody's own nft tables) are named as nft names them.
  const where = tool ? `${tool} -t ${l.table}` : `nft ${l.family} ${l.table}`;
  if (l.type !== 'rule') return `${where}: chain ${l.chain} ${l.type} ${l.verdict}`;
  return l.spec !== undefined ? `${where} -A ${l.chain} ${l.spec}` : `${where} chain ${l.chain}: ${l.text} (${l.verdict}${l.target ? ` ${l.target}` : ''})`;
};

/**
 * The trace of one packet (onePacket's lines, in order, rules' specs
 * filled in) read as an explanation; undefined while it has no final
 * verdict. A drop by one of berth's rules is named with the reason the eBPF
 * datapath gives the same verdict; reaching berth_explain's own drop at the
 * end means the packet passed.
 */
export function readTrace(lines: TraceLine[], ctx: TraceContext): (DpExplainResult & { trace: string[] }) | undefined {
  const trace: string[] = [];
  let lastPacket: TraceLine | undefined;
  let decided: TraceLine | undefined;
  for (const l of lines) {
    if (l.kind === 'packet') {
      lastPacket = l;
      continue;
    }
    if (l.table === TRACE_TABLE) {
      if (l.verdict !== 'drop') continue;
      return passed(lastPacket, l.chain === 'in', decided, trace, ctx);
    }
    trace.push(ruleLine(l));
    if (l.verdict === 'accept' && l.type === 'rule' && (l.chain.startsWith('BERTH-') || l.table === 'berth')) decided = l;
    if (l.verdict !== 'drop') continue;
    const family = FAMILY[l.family];
    // The nftables datapath's tables (`berth`) name each drop's reason in its counter: "counter name drop-REASON".
    const counted = l.table === 'berth' ? /counter name "?drop-([a-z0-9-]+)/.exec(l.text ?? '')?.[1] : undefined;
    const ours = counted ?? (l.chain.startsWith('BERTH-') && family);
    // berth's ebtables rules drop frames of a MAC not the sandbox's, and ARP (explain sends no ARP).
    const reason = counted ?? (ours && family ? (family === 'eb' ? 'spoof-mac' : dropReason(family, l.chain, l.spec ?? '') ?? 'policy') : 'policy');
    const known = Object.values(dropReasons).find((r) => r.name === reason);
    return {
      verdict: 'drop', delivered: 'dropped', rule: reason === 'policy' ? 'policy' : 'none',
      ruleText: ruleLine(l), reason, reasonText: ours ? known?.what ?? reason : `a rule that is not berth's: ${ruleLine(l)}`, trace,
    };
  }
  return undefined;
}

function passed(pkt: TraceLine | undefined, input: boolean, decided: TraceLine | undefined, trace: string[], ctx: TraceContext): DpExplainResult & { trace: string[] } {
  const f = pkt?.packet ?? {};
  const q = ctx.query;
  const now = { src: f.src ?? q.src, dst: f.dst ?? q.dst, sport: f.sport ?? q.sport, dport: f.dport ?? q.dport };
  const translated = now.src !== q.src || now.dst !== q.dst || now.sport !== q.sport || now.dport !== q.dport ? now : undefined;
  const out = f.oif;
  const d = ctx.desired;
  const net = out ? d?.networks.find((n) => n.bridge === out) : undefined;
  const ep = net ? d?.endpoints.find((e) => e.network === net.id && (e.v4 === now.dst || e.v6 === now.dst)) : undefined;
  const gateway = d?.networks.some((n) => n.gateway4 === now.dst || n.gateway6 === now.dst);
  let delivered: DpExplainResult['delivered'];
  let via: string | undefined;
  if (input || out === 'lo') delivered = 'host';
  else if (net) {
    // Into a bridge: the sandbox holding the address, or the bridge's own decision for an address nobody holds.
    delivered = ep?.hostIf ? 'sandbox' : 'host';
    via = ep?.hostIf;
  } else {
    delivered = 'outside';
    via = out;
  }
  let rule: string;
  const spec = decided?.spec ?? '';
  // the nftables datapath's rules (table berth), by what they look up
  const nft = decided?.table === 'berth' ? decided.text ?? '' : '';
  if (decided?.chain === 'BERTH-PUBLISH' || /@pubfwd[46]/.test(nft) || (delivered === 'sandbox' && translated && translated.dst !== q.dst)) rule = 'publish';
  else if (/RELATED,ESTABLISHED/.test(spec) || /ct state established,related/.test(nft)) rule = 'flow';
  else if (decided?.chain === 'BERTH-ICC' || decided?.chain === 'icc_links') rule = 'link';
  else if ((decided?.chain === 'BERTH-FORWARD' && /^-i (\S+) -o \1 /.test(spec)) || /vmap @intra/.test(nft)) rule = 'icc';
  else if (delivered === 'host') rule = ctx.from === 'host' ? 'host' : gateway ? 'gateway' : net ? 'subnet' : 'host';
  else if (delivered === 'outside') rule = ctx.from === 'sandbox' ? (translated && translated.src !== q.src ? 'masquerade' : 'route') : 'not-ours';
  else rule = 'icc';
  const what = RULES[Object.keys(RULES).map(Number).find((k) => RULES[k]!.name === rule) ?? 0]!.what;
  return {
    verdict: 'pass', delivered, ...(via ? { via } : {}), rule,
    ruleText: decided ? `${what} (${ruleLine(decided)})` : what,
    ...(translated ? { translated } : {}), trace,
  };
}

/** The nft match of the packet's protocol (and ports, or echo id), as it is sent. */
function l4Match(q: DpExplainQuery, v4: boolean): string {
  if (q.proto === 'icmp') return v4 ? `icmp type echo-request icmp id ${q.sport}` : `icmpv6 type echo-request icmpv6 id ${q.sport}`;
  return `${q.proto} sport ${q.sport} ${q.proto} dport ${q.dport}`;
}

/**
 * The TTL (hop limit) explain's packet is sent with: with its identification
 * or flow label, what marks it in the packet itself (no skb mark, which
 * policy routing or others' rules could see). Hosts send 64, 128 or 255.
 */
export const TRACE_TTL = 251;

/** nft rules that trace the packet carrying @mark (IPv4 identification, IPv6 flow label) from where it starts, and stop it at the end. */
export function traceScript(q: DpExplainQuery, mark: number, startIf?: string): string {
  const v4 = familyOf(q.dst) === 4;
  const ip = v4 ? 'ip' : 'ip6';
  const marker = v4 ? `ip id ${mark & 0xffff}` : `ip6 flowlabel ${mark & 0xfffff}`;
  const ttl = v4 ? 'ip ttl' : 'ip6 hoplimit';
  const proto = q.proto === 'icmp' ? (v4 ? 'icmp' : 'ipv6-icmp') : q.proto;
  const start = `  chain start { type filter hook ${q.from === 'host' ? 'output' : 'prerouting'} priority -350; ${startIf ? `iifname "${startIf}" ` : ''}${ip} saddr ${q.src} ${ip} daddr ${q.dst} ${marker} ${ttl} ${TRACE_TTL} ${l4Match(q, v4)} meta nftrace set 1; }`;
  // Translation changes addresses and ports, never the identification, the flow label or the protocol; forwarding takes one off the TTL.
  const stop = `${marker} ${ttl} { ${TRACE_TTL - 1}, ${TRACE_TTL} } meta l4proto ${proto} drop`;
  const bridge = q.from === 'sandbox';
  return [
    `add table bridge ${TRACE_TABLE}`, `delete table bridge ${TRACE_TABLE}`,
    `add table inet ${TRACE_TABLE}`, `delete table inet ${TRACE_TABLE}`,
    ...(bridge ? [`table bridge ${TRACE_TABLE} {`, start, '}'] : []),
    `table inet ${TRACE_TABLE} {`,
    ...(bridge ? [] : [start]),
    `  chain post { type filter hook postrouting priority 500; ${stop}; }`,
    `  chain in { type filter hook input priority 500; ${stop}; }`,
    '}', '',
  ].join('\n');
}

/** Removes what an explain that did not finish (berthd stopped in the middle) left: the trace tables and a veth pair. */
export async function removeLeftovers(): Promise<void> {
  await removeTraceTables().catch(() => undefined);
  for (const l of await nl.linkList().catch(() => [])) {
    if (new RegExp(`^${VETH}o[0-9a-f]{6}$`).test(l.name)) await nl.linkDel({ name: l.name }).catch(() => false);
  }
}

/** Removes the trace tables. */
export async function removeTraceTables(): Promise<void> {
  await run('nft', ['-f', '-'], {
    timeoutMs: 10_000,
    input: [`add table bridge ${TRACE_TABLE}`, `delete table bridge ${TRACE_TABLE}`, `add table inet ${TRACE_TABLE}`, `delete table inet ${TRACE_TABLE}`, ''].join('\n'),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `nft -a monitor trace`; its output collects in `text`. */
function monitor(): { proc: ChildProcess; text: () => string; failed: () => string | undefined } {
  let buf = '';
  let err = '';
  let failure: string | undefined;
  const proc = spawn('nft', ['-a', 'monitor', 'trace'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  proc.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.on('error', (e) => (failure = `nft could not be started: ${e.message}`));
  proc.on('exit', (code, signal) => (failure ??= `nft monitor trace exited (${code ?? signal}): ${err.trim()}`));
  return { proc, text: () => buf, failed: () => failure };
}

/** Where a rule of iptables' tables is in iptables-save's terms: the spec of (family, table, chain, handle). */
export type SpecOf = (family: string, table: string, chain: string, handle: number) => Promise<string | undefined>;

/**
 * A SpecOf for one explain: nft lists a table's rules with their handles in
 * order, and @save gives the same chains as iptables-save writes them.
 */
export function specResolver(save: (f: Family) => Promise<Saved>): SpecOf {
  const handles = new Map<string, Promise<Map<number, { chain: string; index: number }>>>();
  const saved = new Map<Family, Promise<Saved>>();
  return async (family, table, chain, handle) => {
    const f = FAMILY[family];
    if (!f) return undefined;
    const key = `${family} ${table}`;
    if (!handles.has(key)) {
      handles.set(key, run('nft', ['-a', '-j', 'list', 'table', family, table], { timeoutMs: 30_000 }).then((r) => {
        const at = new Map<number, { chain: string; index: number }>();
        const count = new Map<string, number>();
        for (const o of (JSON.parse(r.stdout) as { nftables: { rule?: { chain: string; handle: number } }[] }).nftables) {
          if (!o.rule) continue;
          const i = count.get(o.rule.chain) ?? 0;
          count.set(o.rule.chain, i + 1);
          at.set(o.rule.handle, { chain: o.rule.chain, index: i });
        }
        return at;
      }));
    }
    const pos = (await handles.get(key)!.catch(() => undefined))?.get(handle);
    if (!pos || pos.chain !== chain) return undefined;
    if (!saved.has(f)) saved.set(f, save(f));
    const t = (await saved.get(f)!.catch(() => undefined))?.get(table);
    return t?.rules.get(chain)?.[pos.index];
  };
}

/**
 * Sends the query's packet and reads the kernel's trace of it (@gatewayMac:
 * the bridge's, for a sandbox's packet not meant for a neighbour; @specOf
 * names the rules met as iptables-save writes them). The caller serialises
 * runs (one trace table at a time).
 */
export async function traceExplain(q: DpExplainQuery, gatewayMac: string | undefined, desired: DesiredDatapath | undefined, specOf: SpecOf, log: Logger): Promise<DpExplainResult> {
  const mark = randomInt(1, 0xffff);
  let veth: { outer: string; inner: string; mac: string; peerMac: string } | undefined;
  let startIf: string | undefined;
  if (q.from === 'sandbox') {
    const missing = [!q.netns && 'its namespace', !q.ifName && 'its interface', !q.hostIf && 'its bridge port'].filter(Boolean);
    if (missing.length) throw new BerthError('bad-request', `explain from ${q.src}: the sandbox has no ${missing.join(', ')}`);
    if (!q.dstMac && !gatewayMac) throw new BerthError('unavailable', `explain from ${q.src}: the MAC of the bridge behind ${q.hostIf} is not known`);
    startIf = q.hostIf;
  }
  const mon = monitor();
  let rpFilter = '';
  try {
    if (q.from === 'outside') {
      veth = await tempVeth();
      startIf = veth.inner;
      rpFilter = await nl.sysctlRead({ key: 'net.ipv4.conf.all.rp_filter' }).catch(() => '');
    }
    const frame = buildPacket({
      srcMac: q.from === 'outside' ? veth!.peerMac : q.srcMac ?? '02:00:00:00:00:01',
      dstMac: q.from === 'outside' ? veth!.mac : q.dstMac ?? gatewayMac ?? '02:00:00:00:00:02',
      src: q.src, dst: q.dst, proto: q.proto, sport: q.sport, dport: q.dport, mark, ttl: TRACE_TTL,
    });
    await run('nft', ['-f', '-'], { timeoutMs: 10_000, input: traceScript(q, mark, startIf) });
    const inject = () => addon().packetInject(q.from === 'sandbox'
      ? { netns: q.netns!, ifname: q.ifName!, frame }
      : q.from === 'outside' ? { ifname: veth!.outer, frame } : { frame });
    // The host's own packet: the stop at the end makes its sendto fail with EPERM, as any drop in OUTPUT does.
    const send = () => inject().catch((e: NodeJS.ErrnoException & { syscall?: string }) => {
      if (q.from !== 'host' || e.code !== 'EPERM' || e.syscall !== 'sendto') throw e;
    });
    const t0 = Date.now();
    let sent = 0;
    let seen = 0;
    let quietSince = t0;
    let lines: TraceLine[] = [];
    // Parsed as it comes: only whole lines, each once.
    const all: TraceLine[] = [];
    let consumed = 0;
    for (;;) {
      const bad = mon.failed();
      if (bad) throw new BerthError('unavailable', `berth explain on the iptables datapath: ${bad}`);
      const text = mon.text();
      const end = text.lastIndexOf('\n') + 1;
      if (end > consumed) {
        all.push(...parseTrace(text.slice(consumed, end)));
        consumed = end;
      }
      lines = onePacket(all, mark);
      // The monitor may not be listening yet when the first packet goes: send again until a trace shows up.
      if (!lines.length && Date.now() - t0 >= sent * 300) {
        await send();
        sent++;
      }
      if (traceDone(lines)) break;
      // A packet the kernel drops outside netfilter (no route, a martian) ends its trace without a verdict.
      if (lines.length !== seen) {
        seen = lines.length;
        quietSince = Date.now();
      }
      if (lines.length && Date.now() - quietSince > 400) break;
      if (Date.now() - t0 > 5000) {
        if (!lines.length) throw new BerthError('unavailable', `berth explain on the iptables datapath: the kernel traced nothing of the packet ${q.src} -> ${q.dst} (${q.proto}, ${familyOf(q.dst) === 4 ? 'IPv4 id' : 'flow label'} ${mark}): is nf_tables tracing available?`);
        break;
      }
      await sleep(20);
    }
    for (const l of lines) {
      if (l.kind === 'verdict' && l.type === 'rule' && l.handle !== undefined && l.table !== TRACE_TABLE) l.spec = await specOf(l.family, l.table, l.chain, l.handle);
    }
    const r = readTrace(lines, { desired, from: q.from, query: q });
    if (r) return r;
    const trace = lines.filter((l) => l.kind === 'verdict' && l.table !== TRACE_TABLE).map(ruleLine);
    return {
      verdict: 'drop', delivered: 'dropped', rule: 'none', reason: 'kernel',
      ruleText: 'no rule: the packet left netfilter without a verdict',
      reasonText: 'dropped by the kernel outside the rules (no route, a martian address, reverse-path filter, or a bridge that does not forward it)'
        + (rpFilter.trim() === '1' ? '; note: net.ipv4.conf.all.rp_filter=1 here, which drops a made-up outside source on the interface explain stands in for the uplink with, so this answer may not be the uplink\'s' : ''),
      trace,
    };
  } finally {
    log.debug({ query: q, trace: mon.text().slice(0, 20_000) }, 'explain: the kernel\'s trace');
    mon.proc.kill();
    await removeTraceTables().catch((e) => log.warn({ err: e }, 'explain: could not remove the trace table'));
    if (veth) await nl.linkDel({ name: veth.outer }).catch(() => false);
  }
}

/** A veth pair standing in for the uplink: frames written to `outer` arrive on `inner`. */
async function tempVeth(): Promise<{ outer: string; inner: string; mac: string; peerMac: string }> {
  const n = randomInt(0, 0xffffff).toString(16).padStart(6, '0');
  const outer = `${VETH}o${n}`;
  const inner = `${VETH}i${n}`;
  await nl.linkAddVeth({ name: inner, peerName: outer });
  try {
    for (const dev of [inner, outer]) {
      // No link-local address, no router solicitations; reverse-path filtering off on the pair (the kernel takes the larger of this and `all`).
      await nl.sysctlWrite({ key: `net.ipv6.conf.${dev}.addr_gen_mode`, value: '1' }).catch(() => undefined);
      await nl.sysctlWrite({ key: `net.ipv6.conf.${dev}.accept_ra`, value: '0' }).catch(() => undefined);
      await nl.sysctlWrite({ key: `net.ipv4.conf.${dev}.rp_filter`, value: '0' });
    }
    await nl.linkSet({ name: inner, up: true });
    await nl.linkSet({ name: outer, up: true });
    const links = await nl.linkList();
    return { outer, inner, mac: links.find((l) => l.name === inner)!.mac, peerMac: links.find((l) => l.name === outer)!.mac };
  } catch (e) {
    await nl.linkDel({ name: outer }).catch(() => false);
    throw e;
  }
}
