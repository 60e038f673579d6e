/**
 * A sandbox is never a router for its peers, on both datapaths. The attacker
 * is root in its sandbox and crafts, with raw sockets (craft.py), what only a
 * router or a DHCP server sends: a router advertisement with a prefix to
 * ff02::1, ICMP and ICMPv6 redirects, DHCP and DHCPv6 server replies, and a
 * neighbour advertisement for a peer's address. Each probe first shows its
 * effect on a bare veth pair (no berth: the victim takes the route and the
 * address, the frame arrives, the neighbour entry is taken over); with berth
 * it leaves the attacker (its interface counts it), never reaches the victim,
 * and is counted under its own drop reason. The victim's own sysctl defence
 * (accept_ra=0) is switched off for the probes, so the datapath alone is tested.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';
import { World, type WorldSpec } from '../helpers/conformance.js';
import { DATAPATHS } from '../helpers/datapaths.js';

const CRAFT = projectPath('test', 'attacks', 'craft.py');
const BAD_PREFIX = '2001:db8:bad:';
const ATTACKER_MAC = '02:aa:aa:aa:aa:aa';

type Kind = 'ra' | 'redirect6' | 'redirect4' | 'dhcp4' | 'dhcp6' | 'na';

/** Runs craft.py in a namespace (nsenter: the harness's way into test namespaces). */
async function craft(netns: string, ...args: string[]): Promise<string> {
  return (await run('nsenter', [`--net=${netns}`, '--', 'python3', CRAFT, ...args], { timeoutMs: 10_000 })).stdout.trim();
}

/** Counts frames of @kind arriving on @iface of @netns while @send runs (and a moment after). */
async function arriving(netns: string, iface: string, kind: Kind, send: () => Promise<unknown>, target?: string): Promise<number> {
  const p = spawn('nsenter', [`--net=${netns}`, '--', 'python3', CRAFT, 'sniff', iface, '2', kind, ...(target ? [target] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const rl = createInterface({ input: p.stdout! });
  const ready = new Promise<void>((resolve) => rl.on('line', (l) => {
    lines.push(l);
    if (l === 'ready') resolve();
  }));
  const done = new Promise<number>((resolve) => p.on('close', (code) => resolve(code ?? -1)));
  await ready;
  await send();
  const code = await done;
  if (code !== 0) throw new Error(`sniffer in ${netns} exited ${code}`);
  return Number(lines[lines.length - 1]);
}

/** Polls @check until true or @ms pass; returns the last result. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('controls: on a bare veth pair every probe works', () => {
  let t: Topology;
  const atk = () => t.nsPath('atk');
  const vic = () => t.nsPath('vic');
  const ipv = (...a: string[]) => run('ip', ['-n', t.ns('vic'), ...a]);

  beforeAll(async () => {
    t = testTopology();
    await t.addNetns('atk');
    await t.addNetns('vic');
    // No DAD: the attacker's link-local source is usable at once.
    for (const ns of ['atk', 'vic']) await t.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
    await run('ip', ['-n', t.ns('atk'), 'link', 'add', 'atk0', 'address', ATTACKER_MAC, 'type', 'veth', 'peer', 'name', 'vic0', 'netns', t.ns('vic')]);
    await run('ip', ['-n', t.ns('atk'), 'addr', 'add', '10.99.0.1/24', 'dev', 'atk0']);
    await ipv('addr', 'add', '10.99.0.2/24', 'dev', 'vic0');
    await run('ip', ['-n', t.ns('atk'), 'link', 'set', 'atk0', 'up']);
    await ipv('link', 'set', 'vic0', 'up');
    await ipv('route', 'add', 'default', 'via', '10.99.0.1');
    // A router advertisement must come from a link-local address: wait until both ends have one.
    for (const [n, dev] of [['atk', 'atk0'], ['vic', 'vic0']] as const) {
      const has = await eventually(async () => (await run('ip', ['-n', t.ns(n), '-6', 'addr', 'show', 'dev', dev, 'scope', 'link'])).stdout.includes('fe80:'));
      if (!has) throw new Error(`${dev} got no link-local address`);
    }
  }, 30_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('a router advertisement gives the victim a default route via the attacker and an address in its prefix', async () => {
    expect(await craft(atk(), 'ra', 'atk0')).toBe('3');
    const taken = await eventually(async () => {
      const route = (await ipv('-6', 'route', 'show', 'default')).stdout;
      const addr = (await ipv('-6', 'addr', 'show', 'dev', 'vic0')).stdout;
      return route.includes('via fe80:') && addr.includes(BAD_PREFIX);
    });
    expect(taken).toBe(true);
  });

  it('redirects, DHCP and DHCPv6 server replies arrive', async () => {
    const ll = (await run('ip', ['-n', t.ns('vic'), '-6', '-j', 'addr', 'show', 'dev', 'vic0', 'scope', 'link'])).stdout;
    // (ip -j lists filtered-out addresses as empty objects)
    const vicLl = (JSON.parse(ll) as { addr_info: { local?: string }[] }[])[0]!.addr_info.find((a) => a.local?.startsWith('fe80:'))!.local!;
    expect(await arriving(vic(), 'vic0', 'redirect6', () => craft(atk(), 'redirect6', 'atk0', vicLl, '2001:db8:1::1', 'fe80::1'))).toBe(3);
    expect(await arriving(vic(), 'vic0', 'redirect4', () => craft(atk(), 'redirect4', 'atk0', '10.99.0.2', '192.0.2.1', '10.99.0.3'))).toBe(3);
    expect(await arriving(vic(), 'vic0', 'dhcp4', () => craft(atk(), 'dhcp4', 'atk0'))).toBe(3);
    expect(await arriving(vic(), 'vic0', 'dhcp6', () => craft(atk(), 'dhcp6', 'atk0'))).toBe(3);
  });

  it('a neighbour advertisement for another\'s address takes over the victim\'s entry', async () => {
    await ipv('-6', 'neigh', 'add', '2001:db8:99::1', 'lladdr', '02:11:11:11:11:11', 'dev', 'vic0', 'nud', 'stale');
    expect(await arriving(vic(), 'vic0', 'na', () => craft(atk(), 'na', 'atk0', '2001:db8:99::1', ATTACKER_MAC), '2001:db8:99::1')).toBe(3);
    expect((await ipv('-6', 'neigh', 'show', '2001:db8:99::1', 'dev', 'vic0')).stdout).toContain(ATTACKER_MAC);
  });
});

const SPEC: WorldSpec = {
  networks: [
    { name: 'dual', args: ['--ipv6', '--subnet', '10.86.0.0/24', '--subnet', 'fd00:86::/64'] },
    { name: 'quiet6', args: ['--ipv6', '--subnet', '10.85.0.0/24', '--subnet', 'fd00:85::/64', '-o', 'icc=false'] },
    { name: 'routed', args: ['--subnet', '10.87.0.0/24', '-o', 'router=external'] },
  ],
  sandboxes: [
    { name: 'atk', network: 'dual' },
    { name: 'vic', network: 'dual' },
    { name: 'qatk', network: 'quiet6' },
    { name: 'qvic', network: 'quiet6' },
    { name: 'r1', network: 'routed' },
  ],
  listen: { tcp: [], udp: [] },
};

describe.each(DATAPATHS)('a sandbox is never a router (%s datapath)', (datapath) => {
  let w: World;
  const ns = (n: string) => w.sb(n).netns;
  const sysctl = async (n: string, key: string) => (await w.agent(n).sh('sysctl', '-n', key)).trim();

  async function drops(): Promise<Record<string, number>> {
    const d = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail?: { drops?: Record<string, { packets: number }> } };
    return Object.fromEntries(Object.entries(d.detail?.drops ?? {}).map(([k, v]) => [k, v.packets]));
  }

  /** Sends with @send from @attacker; returns what arrived at @victim, how many left, and the @reason count's rise. */
  async function attempt(attacker: string, victim: string, kind: Kind, reason: string, send: () => Promise<unknown>, target?: string) {
    const before = await drops();
    const tx = await w.agent(attacker).txPackets('eth0');
    const seen = await arriving(ns(victim), 'eth0', kind, send, target);
    const sent = (await w.agent(attacker).txPackets('eth0')) - tx;
    const counted = ((await drops())[reason] ?? 0) - (before[reason] ?? 0);
    return { seen, sent, counted };
  }

  beforeAll(async () => {
    w = await World.build(datapath, SPEC);
    // The victims' own defence is the sysctl below; switched off here so that the datapath alone is tested.
    for (const v of ['vic', 'qvic']) await w.agent(v).sh('sysctl', '-qw', 'net.ipv6.conf.all.accept_ra=1', 'net.ipv6.conf.eth0.accept_ra=1', 'net.ipv6.conf.eth0.accept_redirects=1', 'net.ipv4.conf.all.accept_redirects=1', 'net.ipv4.conf.eth0.accept_redirects=1');
  }, 120_000);
  afterAll(async () => {
    await w?.destroy();
  });

  it('sandboxes accept no RA and no redirect, unless the network says it has a real router (-o router=external)', async () => {
    expect(await sysctl('atk', 'net.ipv6.conf.eth0.accept_ra')).toBe('0');
    expect(await sysctl('atk', 'net.ipv6.conf.all.accept_ra')).toBe('0');
    expect(await sysctl('atk', 'net.ipv6.conf.eth0.accept_redirects')).toBe('0');
    expect(await sysctl('atk', 'net.ipv4.conf.eth0.accept_redirects')).toBe('0');
    expect(await sysctl('atk', 'net.ipv4.conf.all.accept_redirects')).toBe('0');
    expect(await sysctl('r1', 'net.ipv6.conf.eth0.accept_ra')).toBe('1');
    expect(await sysctl('r1', 'net.ipv4.conf.all.accept_redirects')).toBe('1');
  });

  it('control: v6 ping to the peer and the gateway works, and an NA for the attacker\'s own address reaches the victim', async () => {
    await w.agent('vic').sh('ping', '-6', '-c1', '-W2', w.sb('atk').v6!);
    await w.agent('vic').sh('ping', '-6', '-c1', '-W2', 'fd00:86::1');
    const r = await attempt('atk', 'vic', 'na', 'spoof-nd', () => craft(ns('atk'), 'na', 'eth0', w.sb('atk').v6!, w.sb('atk').mac), w.sb('atk').v6!);
    expect(r).toMatchObject({ seen: 3, counted: 0 });
  });

  for (const net of [['atk', 'vic'], ['qatk', 'qvic']] as const) {
    const [a, v] = net;
    it(`a router advertisement from ${a} never reaches ${v}: no route, no address, counted as router-adv`, async () => {
      const r = await attempt(a, v, 'ra', 'router-adv', () => craft(ns(a), 'ra', 'eth0'));
      expect(r.sent).toBeGreaterThanOrEqual(3);
      expect(r.seen).toBe(0);
      expect(r.counted).toBeGreaterThanOrEqual(3);
      expect((await w.agent(v).sh('ip', '-6', 'route', 'show', 'default'))).not.toContain('fe80:');
      expect((await w.agent(v).sh('ip', '-6', 'addr', 'show'))).not.toContain(BAD_PREFIX);
    });
  }

  it('ICMPv6 and ICMP redirects are dropped, counted as redirect', async () => {
    const r6 = await attempt('atk', 'vic', 'redirect6', 'redirect', () => craft(ns('atk'), 'redirect6', 'eth0', w.sb('vic').v6!, '2001:db8:1::1', 'fe80::1'));
    expect(r6).toMatchObject({ seen: 0 });
    expect(r6.sent).toBeGreaterThanOrEqual(3);
    expect(r6.counted).toBeGreaterThanOrEqual(3);
    const r4 = await attempt('atk', 'vic', 'redirect4', 'redirect', () => craft(ns('atk'), 'redirect4', 'eth0', w.sb('vic').v4, '192.0.2.1', w.sb('atk').v4));
    expect(r4).toMatchObject({ seen: 0 });
    expect(r4.sent).toBeGreaterThanOrEqual(3);
    expect(r4.counted).toBeGreaterThanOrEqual(3);
  });

  it('DHCP and DHCPv6 server replies are dropped, counted as dhcp-server', async () => {
    for (const kind of ['dhcp4', 'dhcp6'] as const) {
      const r = await attempt('atk', 'vic', kind, 'dhcp-server', () => craft(ns('atk'), kind, 'eth0'));
      expect(r.seen, kind).toBe(0);
      expect(r.sent, kind).toBeGreaterThanOrEqual(3);
      expect(r.counted, kind).toBeGreaterThanOrEqual(3);
    }
  });

  it('a neighbour advertisement for the gateway\'s or a peer\'s address is dropped, counted as spoof-nd', async () => {
    await w.agent('vic').sh('ping', '-6', '-c1', '-W2', 'fd00:86::1');
    for (const target of ['fd00:86::1', w.sb('vic').v6!]) {
      const r = await attempt('atk', 'vic', 'na', 'spoof-nd', () => craft(ns('atk'), 'na', 'eth0', target, w.sb('atk').mac), target);
      expect(r.seen, target).toBe(0);
      expect(r.sent, target).toBeGreaterThanOrEqual(3);
      expect(r.counted, target).toBeGreaterThanOrEqual(3);
    }
    expect(await w.agent('vic').sh('ip', '-6', 'neigh', 'show', 'fd00:86::1')).not.toContain(w.sb('atk').mac);
  });

  it('afterwards the victim\'s v6 ping to its peer and gateway still works (neighbour discovery of own addresses passes)', async () => {
    await w.agent('vic').sh('ip', '-6', 'neigh', 'flush', 'dev', 'eth0');
    await w.agent('vic').sh('ping', '-6', '-c1', '-W2', w.sb('atk').v6!);
    await w.agent('vic').sh('ping', '-6', '-c1', '-W2', 'fd00:86::1');
    await w.agent('qvic').sh('ping', '-6', '-c1', '-W2', 'fd00:85::1');
  });
});
