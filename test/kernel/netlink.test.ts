/**
 * rtnetlink and namespaces through the addon, in namespaces the test makes
 * with the addon itself (never the root one). Every change is read back
 * twice: with berth's own list functions and, independently, with
 * `ip -j -n NS ...`.
 */
import { readFile, readlink } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nl, type NlLink } from '../../src/netlink/index.js';
import { isNativeError } from '../../src/native/addon.js';
import { run } from '../../src/exec.js';
import { rejection } from '../helpers/rejection.js';

const PREFIX = `bt${process.pid}-nl-`;
const NETNS_DIR = '/var/run/netns';
const made = new Set<string>();

interface Ns {
  name: string;
  path: string;
}

function nsRef(short: string): Ns {
  return { name: PREFIX + short, path: `${NETNS_DIR}/${PREFIX}${short}` };
}

async function netns(short: string): Promise<Ns> {
  const ns = nsRef(short);
  await nl.netnsCreate(ns.path);
  made.add(ns.path);
  return ns;
}

async function dropNetns(ns: Ns): Promise<void> {
  made.delete(ns.path);
  await nl.netnsDelete(ns.path);
}

/** `ip -j -n NS args...`, parsed. */
async function ipj<T = Record<string, unknown>>(ns: Ns, ...args: string[]): Promise<T[]> {
  const { stdout } = await run('ip', ['-j', '-n', ns.name, ...args]);
  return stdout.trim() ? (JSON.parse(stdout) as T[]) : [];
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  address: string;
  master?: string;
  operstate: string;
  link_netnsid?: number;
  link_index?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

async function ipLink(ns: Ns, name: string): Promise<IpLink | undefined> {
  return (await ipj<IpLink>(ns, '-d', 'link', 'show')).find((l) => l.ifname === name);
}

async function link(ns: Ns, name: string): Promise<NlLink | undefined> {
  return (await nl.linkList({ netns: ns.path })).find((l) => l.name === name);
}

async function rootLinkNames(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as IpLink[]).map((l) => l.ifname).sort();
}

let rootLinksBefore: string[];
let rootNetnsBefore: string;

beforeAll(async () => {
  rootLinksBefore = await rootLinkNames();
  rootNetnsBefore = await readlink('/proc/self/ns/net');
});

afterAll(async () => {
  const failures: string[] = [];
  for (const path of [...made].reverse()) {
    try {
      await nl.netnsDelete(path);
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  made.clear();
  const { stdout } = await run('ip', ['netns', 'list']);
  const left = stdout.split('\n').filter((l) => l.startsWith(PREFIX));
  expect(failures).toEqual([]);
  expect(left).toEqual([]);
  expect(await rootLinkNames()).toEqual(rootLinksBefore);
  expect(await readlink('/proc/self/ns/net')).toBe(rootNetnsBefore);
});

describe('namespaces', () => {
  it('netnsCreate makes a namespace iproute2 sees, with lo up; netnsDelete removes it', async () => {
    const ns = await netns('life');
    const { stdout } = await run('ip', ['netns', 'list']);
    expect(stdout.split('\n').map((l) => l.split(' ')[0])).toContain(ns.name);
    const lo = await ipLink(ns, 'lo');
    expect(lo?.flags).toContain('UP');
    expect((await nl.linkList({ netns: ns.path })).map((l) => [l.name, l.up])).toEqual([['lo', true]]);
    // A different namespace from ours.
    const { stdout: inode } = await run('ip', ['netns', 'exec', ns.name, 'readlink', '/proc/self/ns/net']);
    expect(inode.trim()).not.toBe(rootNetnsBefore);

    await expect(rejection(nl.netnsCreate(ns.path))).resolves.toMatchObject({ code: 'EEXIST', syscall: 'open' });
    expect(await nl.netnsDelete(ns.path)).toBe(true);
    made.delete(ns.path);
    expect(await nl.netnsDelete(ns.path)).toBe(false);
    const { stdout: after } = await run('ip', ['netns', 'list']);
    expect(after).not.toContain(ns.name);
  });

  it('leaves every pool thread in the root namespace', async () => {
    // More creations than pool threads, then more reads than pool threads:
    // every read of "our" namespace must still see the root namespace's links.
    const many = ['t1', 't2', 't3', 't4', 't5', 't6'].map(nsRef);
    await Promise.all(many.map((ns) => nl.netnsCreate(ns.path).then(() => made.add(ns.path))));
    const views = await Promise.all(many.map(() => nl.linkList()));
    for (const v of views) expect(v.map((l) => l.name).sort()).toEqual(rootLinksBefore);
    for (const ns of many) await dropNetns(ns);
  });
});

describe('links', () => {
  let h: Ns; // plays the host
  let c: Ns; // plays a container
  let d: Ns; // another namespace to move links into

  beforeAll(async () => {
    h = await netns('h');
    c = await netns('c');
    d = await netns('d');
  });

  it('a bridge and a veth whose peer is born in the container as eth0, enslaved and up', async () => {
    await nl.linkAddBridge({ netns: h.path, name: 'br0', mtu: 1450 });
    // 'eth0' exists in the root namespace: creating it there first would fail.
    await nl.linkAddVeth({
      netns: h.path, name: 've0', peerName: 'eth0', peerNetns: c.path, mtu: 1450,
      mac: '02:00:00:aa:00:01', peerMac: '02:00:00:aa:00:02',
    });
    await nl.linkSet({ netns: h.path, name: 've0', master: 'br0', up: true });
    await nl.linkSet({ netns: h.path, name: 'br0', up: true });
    await nl.linkSet({ netns: c.path, name: 'eth0', up: true });
    // Carrier (operstate) follows the peer through the kernel's linkwatch work, which can lag a busy machine.
    for (let i = 0; i < 40 && !((await link(h, 've0'))?.operUp && (await link(c, 'eth0'))?.operUp); i++) await new Promise((r) => setTimeout(r, 50));

    const br = await link(h, 'br0');
    const ve = await link(h, 've0');
    const eth = await link(c, 'eth0');
    expect(br).toMatchObject({ kind: 'bridge', up: true, master: 0, mtu: 1450 });
    expect(ve).toMatchObject({ kind: 'veth', up: true, operUp: true, master: br!.ifindex, mtu: 1450, mac: '02:00:00:aa:00:01' });
    expect(eth).toMatchObject({ kind: 'veth', up: true, operUp: true, mtu: 1450, mac: '02:00:00:aa:00:02' });
    // Each end names the other by ifindex, in the other namespace.
    expect(ve!.peerIfindex).toBe(eth!.ifindex);
    expect(eth!.peerIfindex).toBe(ve!.ifindex);
    expect(ve!.peerNetnsId).toBeTypeOf('number');

    const ipVe = await ipLink(h, 've0');
    expect(ipVe?.linkinfo?.info_kind).toBe('veth');
    expect(ipVe?.master).toBe('br0');
    expect(ipVe?.flags).toContain('UP');
    expect(ipVe?.operstate).toBe('UP');
    expect(ipVe?.link_index).toBe(eth!.ifindex);
    const ipEth = await ipLink(c, 'eth0');
    expect(ipEth?.address).toBe('02:00:00:aa:00:02');
    expect(ipEth?.mtu).toBe(1450);
    expect((await ipLink(h, 'br0'))?.linkinfo?.info_kind).toBe('bridge');
    expect(await ipLink(h, 'eth0')).toBeUndefined();
  });

  it('nomaster releases a port; mtu and mac change', async () => {
    await nl.linkSet({ netns: h.path, name: 've0', master: null, mtu: 1400, mac: '02:00:00:aa:00:09' });
    expect(await link(h, 've0')).toMatchObject({ master: 0, mtu: 1400, mac: '02:00:00:aa:00:09' });
    const ip = await ipLink(h, 've0');
    expect(ip?.master).toBeUndefined();
    expect(ip?.mtu).toBe(1400);
    expect(ip?.address).toBe('02:00:00:aa:00:09');
    await nl.linkSet({ netns: h.path, name: 've0', master: 'br0' });
    expect((await ipLink(h, 've0'))?.master).toBe('br0');
  });

  it('renames a link', async () => {
    await nl.linkAddVeth({ netns: h.path, name: 'va', peerName: 'vb' });
    await nl.linkSet({ netns: h.path, name: 'va', newName: 'vrenamed' });
    const names = (await nl.linkList({ netns: h.path })).map((l) => l.name);
    expect(names).toContain('vrenamed');
    expect(names).not.toContain('va');
    expect(await ipLink(h, 'vrenamed')).toBeDefined();
    expect(await ipLink(h, 'va')).toBeUndefined();
  });

  it('moves a link to another namespace, renamed and up in the same message', async () => {
    await nl.linkSet({ netns: h.path, name: 'vb', targetNetns: d.path, newName: 'moved0', up: true });
    expect(await link(h, 'vb')).toBeUndefined();
    expect(await link(d, 'moved0')).toMatchObject({ kind: 'veth', up: true });
    expect(await ipLink(h, 'vb')).toBeUndefined();
    expect((await ipLink(d, 'moved0'))?.flags).toContain('UP');
    // Its peer now points across namespaces.
    expect((await link(h, 'vrenamed'))?.peerNetnsId).toBeTypeOf('number');
  });

  it('a macvlan on a veth parent, here and created straight into another namespace', async () => {
    await nl.linkAddMacvlan({ netns: h.path, name: 'mv0', parent: 'vrenamed', mode: 'private' });
    await nl.linkAddMacvlan({ netns: h.path, name: 'mv1', parent: 'vrenamed', peerNetns: d.path });
    const parent = await link(h, 'vrenamed');
    expect(await link(h, 'mv0')).toMatchObject({ kind: 'macvlan', peerIfindex: parent!.ifindex });
    expect(await link(h, 'mv1')).toBeUndefined();
    expect(await link(d, 'mv1')).toMatchObject({ kind: 'macvlan', peerIfindex: parent!.ifindex });
    expect((await ipLink(h, 'mv0'))?.linkinfo?.info_data?.mode).toBe('private');
    const ipMv1 = await ipLink(d, 'mv1');
    expect(ipMv1?.linkinfo?.info_kind).toBe('macvlan');
    expect(ipMv1?.linkinfo?.info_data?.mode).toBe('bridge');
    expect(ipMv1?.link_netnsid).toBeTypeOf('number');
  });

  it('a vxlan with vni, port, local address and learning off', async () => {
    await nl.linkAddVxlan({ netns: h.path, name: 'vx0', vni: 4242, local: '10.66.0.1', learning: false, mtu: 1450 });
    expect(await link(h, 'vx0')).toMatchObject({ kind: 'vxlan', mtu: 1450 });
    const data = (await ipLink(h, 'vx0'))?.linkinfo?.info_data;
    expect(data).toMatchObject({ id: 4242, port: 4789, local: '10.66.0.1', learning: false });
  });

  it('linkDel removes a link and says false when there is none', async () => {
    expect(await nl.linkDel({ netns: h.path, name: 'mv0' })).toBe(true);
    expect(await nl.linkDel({ netns: h.path, name: 'mv0' })).toBe(false);
    expect(await link(h, 'mv0')).toBeUndefined();
    expect(await ipLink(h, 'mv0')).toBeUndefined();
    // Deleting one end of a veth takes its peer in the other namespace too.
    expect(await nl.linkDel({ netns: h.path, name: 'vrenamed' })).toBe(true);
    expect(await link(d, 'moved0')).toBeUndefined();
    expect(await ipLink(d, 'moved0')).toBeUndefined();
  });
});

describe('addresses, routes and neighbours', () => {
  let a: Ns;
  let b: Ns;
  let macA: string;
  let macB: string;

  beforeAll(async () => {
    a = await netns('a');
    b = await netns('b');
    await nl.linkAddVeth({ netns: a.path, name: 'a0', peerName: 'b0', peerNetns: b.path });
    await nl.linkSet({ netns: a.path, name: 'a0', up: true });
    await nl.linkSet({ netns: b.path, name: 'b0', up: true });
    macA = (await link(a, 'a0'))!.mac;
    macB = (await link(b, 'b0'))!.mac;
  });

  interface IpAddrInfo {
    family: string;
    local: string;
    prefixlen: number;
    broadcast?: string;
    scope: string;
    nodad?: boolean;
    tentative?: boolean;
  }
  async function ipAddrs(ns: Ns, dev: string): Promise<IpAddrInfo[]> {
    const [l] = await ipj<{ addr_info: IpAddrInfo[] }>(ns, 'addr', 'show', 'dev', dev);
    return l?.addr_info ?? [];
  }

  it('adds IPv4 with its broadcast and IPv6 without DAD', async () => {
    await nl.addrAdd({ netns: a.path, dev: 'a0', cidr: '10.88.0.1/24' });
    await nl.addrAdd({ netns: a.path, dev: 'a0', cidr: 'fd88::1/64', nodad: true });
    await nl.addrAdd({ netns: a.path, dev: 'a0', cidr: '10.88.1.0/31' });
    await nl.addrAdd({ netns: b.path, dev: 'b0', cidr: '10.88.0.2/24' });
    await nl.addrAdd({ netns: b.path, dev: 'b0', cidr: 'fd88::2/64', nodad: true });

    const mine = await nl.addrList({ netns: a.path, dev: 'a0' });
    expect(mine).toEqual(expect.arrayContaining([
      { dev: 'a0', ifindex: expect.any(Number), cidr: '10.88.0.1/24', family: 4, scope: 'global' },
      { dev: 'a0', ifindex: expect.any(Number), cidr: '10.88.1.0/31', family: 4, scope: 'global' },
      { dev: 'a0', ifindex: expect.any(Number), cidr: 'fd88::1/64', family: 6, scope: 'global' },
    ]));
    expect(mine.some((x) => x.family === 6 && x.scope === 'link')).toBe(true);
    // Unfiltered lists name the device too, and include lo's.
    const all = await nl.addrList({ netns: a.path, family: 4 });
    expect(all.map((x) => `${x.dev} ${x.cidr}`).sort()).toEqual(['a0 10.88.0.1/24', 'a0 10.88.1.0/31', 'lo 127.0.0.1/8']);

    const ip = await ipAddrs(a, 'a0');
    expect(ip.find((x) => x.local === '10.88.0.1')).toMatchObject({ family: 'inet', prefixlen: 24, broadcast: '10.88.0.255', scope: 'global' });
    expect(ip.find((x) => x.local === '10.88.1.0')?.broadcast).toBeUndefined();
    const v6 = ip.find((x) => x.local === 'fd88::1');
    expect(v6).toMatchObject({ family: 'inet6', prefixlen: 64, nodad: true });
    expect(v6?.tentative).toBeUndefined();
  });

  it('deletes an address, false when it is not there', async () => {
    expect(await nl.addrDel({ netns: a.path, dev: 'a0', cidr: '10.88.1.0/31' })).toBe(true);
    expect(await nl.addrDel({ netns: a.path, dev: 'a0', cidr: '10.88.1.0/31' })).toBe(false);
    expect((await nl.addrList({ netns: a.path, dev: 'a0' })).map((x) => x.cidr)).not.toContain('10.88.1.0/31');
    expect((await ipAddrs(a, 'a0')).map((x) => x.local)).not.toContain('10.88.1.0');
  });

  interface IpRoute {
    dst: string;
    gateway?: string;
    dev?: string;
    protocol?: string;
    metric?: number;
    scope?: string;
  }

  it('adds IPv4 and IPv6 routes, default via a gateway, with metric and table', async () => {
    await nl.routeAdd({ netns: b.path, dst: 'default', via: '10.88.0.1' });
    await nl.routeAdd({ netns: b.path, dst: 'default', via: 'fd88::1' });
    await nl.routeAdd({ netns: b.path, dst: '10.99.0.0/16', via: '10.88.0.1', metric: 50 });
    await nl.routeAdd({ netns: b.path, dst: '10.100.0.0/16', dev: 'b0', table: 100 });
    await nl.routeAdd({ netns: b.path, dst: 'fd99::/48', dev: 'b0', src: 'fd88::2', metric: 7 });

    const v4 = await nl.routeList({ netns: b.path, family: 4 });
    expect(v4).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: 'default', via: '10.88.0.1', dev: 'b0', table: 254, protocol: 'static', scope: 'global', family: 4 }),
      expect.objectContaining({ dst: '10.99.0.0/16', via: '10.88.0.1', metric: 50 }),
      expect.objectContaining({ dst: '10.88.0.0/24', dev: 'b0', protocol: 'kernel', scope: 'link', src: '10.88.0.2' }),
    ]));
    expect(v4.map((r) => r.dst)).not.toContain('10.100.0.0/16');
    expect(await nl.routeList({ netns: b.path, table: 100 })).toEqual([
      { family: 4, dst: '10.100.0.0/16', dev: 'b0', table: 100, protocol: 'static', scope: 'link', type: 'unicast' },
    ]);
    const v6 = await nl.routeList({ netns: b.path, family: 6 });
    expect(v6).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: 'default', via: 'fd88::1', dev: 'b0', family: 6 }),
      expect.objectContaining({ dst: 'fd99::/48', dev: 'b0', src: 'fd88::2', metric: 7 }),
    ]));

    const ip4 = await ipj<IpRoute>(b, 'route', 'show');
    expect(ip4).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: 'default', gateway: '10.88.0.1', dev: 'b0', protocol: 'static' }),
      expect.objectContaining({ dst: '10.99.0.0/16', gateway: '10.88.0.1', metric: 50 }),
    ]));
    expect(await ipj<IpRoute>(b, 'route', 'show', 'table', '100')).toEqual([
      expect.objectContaining({ dst: '10.100.0.0/16', dev: 'b0', scope: 'link' }),
    ]);
    const ip6 = await ipj<IpRoute>(b, '-6', 'route', 'show');
    expect(ip6).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: 'default', gateway: 'fd88::1', dev: 'b0' }),
      expect.objectContaining({ dst: 'fd99::/48', dev: 'b0', metric: 7 }),
    ]));
  });

  it('replaces a route in place and refuses a duplicate add', async () => {
    await nl.routeReplace({ netns: b.path, dst: '10.99.0.0/16', via: '10.88.0.3', metric: 50 });
    const hits = (await nl.routeList({ netns: b.path })).filter((r) => r.dst === '10.99.0.0/16');
    expect(hits).toEqual([expect.objectContaining({ via: '10.88.0.3', metric: 50 })]);
    expect(await ipj<IpRoute>(b, 'route', 'show', '10.99.0.0/16')).toEqual([expect.objectContaining({ gateway: '10.88.0.3' })]);
    const e = await rejection(nl.routeAdd({ netns: b.path, dst: '10.99.0.0/16', via: '10.88.0.1', metric: 50 }));
    expect(e).toMatchObject({ code: 'EEXIST', syscall: 'netlink' });
    expect(e.message).toContain('add route 10.99.0.0/16 via 10.88.0.1');
  });

  it('deletes routes, false when there is none', async () => {
    expect(await nl.routeDel({ netns: b.path, dst: '10.99.0.0/16', metric: 50 })).toBe(true);
    expect(await nl.routeDel({ netns: b.path, dst: '10.99.0.0/16', metric: 50 })).toBe(false);
    expect(await nl.routeDel({ netns: b.path, dst: 'default', family: 6 })).toBe(true);
    expect(await nl.routeDel({ netns: b.path, dst: '10.100.0.0/16', table: 100 })).toBe(true);
    expect((await nl.routeList({ netns: b.path })).map((r) => r.dst)).not.toContain('10.99.0.0/16');
    expect(await nl.routeList({ netns: b.path, table: 100 })).toEqual([]);
    expect((await ipj<IpRoute>(b, '-6', 'route', 'show')).map((r) => r.dst)).not.toContain('default');
    expect(await ipj<IpRoute>(b, 'route', 'show', 'table', '100')).toEqual([]);
  });

  interface IpNeigh {
    dst: string;
    dev: string;
    lladdr?: string;
    state: string[];
  }

  it('sets, replaces and deletes neighbours, IPv4 and IPv6', async () => {
    await nl.neighReplace({ netns: a.path, dev: 'a0', ip: '10.88.0.2', mac: macB });
    await nl.neighReplace({ netns: a.path, dev: 'a0', ip: 'fd88::2', mac: macB });
    await nl.neighReplace({ netns: a.path, dev: 'a0', ip: '10.88.0.9', mac: '02:00:00:00:00:09', permanent: false });
    const mine = await nl.neighList({ netns: a.path, dev: 'a0' });
    expect(mine).toEqual(expect.arrayContaining([
      expect.objectContaining({ dev: 'a0', ip: '10.88.0.2', mac: macB, state: 'permanent', family: 4 }),
      expect.objectContaining({ dev: 'a0', ip: 'fd88::2', mac: macB, state: 'permanent', family: 6 }),
      expect.objectContaining({ ip: '10.88.0.9', mac: '02:00:00:00:00:09', state: 'reachable' }),
    ]));
    const ip = await ipj<IpNeigh>(a, 'neigh', 'show', 'dev', 'a0');
    expect(ip).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: '10.88.0.2', lladdr: macB, state: ['PERMANENT'] }),
      expect.objectContaining({ dst: 'fd88::2', lladdr: macB, state: ['PERMANENT'] }),
    ]));

    // Replace changes the address in place.
    await nl.neighReplace({ netns: a.path, dev: 'a0', ip: '10.88.0.2', mac: '02:00:00:00:00:22' });
    expect((await ipj<IpNeigh>(a, 'neigh', 'show', '10.88.0.2'))[0]?.lladdr).toBe('02:00:00:00:00:22');

    expect(await nl.neighDel({ netns: a.path, dev: 'a0', ip: '10.88.0.9' })).toBe(true);
    expect(await nl.neighDel({ netns: a.path, dev: 'a0', ip: '10.88.0.9' })).toBe(false);
    expect((await nl.neighList({ netns: a.path })).map((n) => n.ip)).not.toContain('10.88.0.9');
    expect((await ipj<IpNeigh>(a, 'neigh', 'show')).map((n) => n.dst)).not.toContain('10.88.0.9');
    await nl.neighReplace({ netns: a.path, dev: 'a0', ip: '10.88.0.2', mac: macB });
    await nl.neighReplace({ netns: b.path, dev: 'b0', ip: '10.88.0.1', mac: macA });
    await run('ip', ['netns', 'exec', a.name, 'ping', '-c', '1', '-W', '2', '-q', '10.88.0.2']);
  });
});

describe('sysctls', () => {
  let s: Ns;
  beforeAll(async () => {
    s = await netns('s');
  });

  it('writes and reads inside a namespace and leaves the root namespace alone', async () => {
    const rootBefore = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
    const flipped = rootBefore === '1' ? '0' : '1';
    expect(await nl.sysctlRead({ netns: s.path, key: 'net.ipv4.ip_forward' })).toBe('0');
    await nl.sysctlWrite({ netns: s.path, key: 'net.ipv4.ip_forward', value: flipped });
    expect(await nl.sysctlRead({ netns: s.path, key: 'net.ipv4.ip_forward' })).toBe(flipped);
    const { stdout } = await run('ip', ['netns', 'exec', s.name, 'sysctl', '-n', 'net.ipv4.ip_forward']);
    expect(stdout.trim()).toBe(flipped);
    expect((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim()).toBe(rootBefore);
    expect(await nl.sysctlRead({ key: 'net.ipv4.ip_forward' })).toBe(rootBefore);

    // Per-interface keys, in the namespace's own view of the interface.
    await nl.sysctlWrite({ netns: s.path, key: 'net.ipv6.conf.lo.disable_ipv6', value: '1' });
    const { stdout: v6 } = await run('ip', ['netns', 'exec', s.name, 'sysctl', '-n', 'net.ipv6.conf.lo.disable_ipv6']);
    expect(v6.trim()).toBe('1');
  });

  it('refuses keys outside net.* and names unknown ones', async () => {
    for (const key of ['kernel.hostname', 'net', 'net.', 'net..ipv4', 'net.ipv4/../../kernel', 'net.IPV4.ip_forward', 'net.ipv4.ip_forward.']) {
      expect(() => nl.sysctlRead({ netns: s.path, key })).toThrow(TypeError);
    }
    expect(() => nl.sysctlWrite({ netns: s.path, key: 'kernel.hostname', value: 'x' })).toThrow(/sysctl key 'kernel.hostname'/);
    const e = await rejection(nl.sysctlRead({ netns: s.path, key: 'net.ipv4.conf.nope0.forwarding' }));
    expect(e).toMatchObject({ code: 'ENOENT', syscall: 'open' });
    expect(e.message).toContain('net.ipv4.conf.nope0.forwarding');
    expect(e.message).toContain(s.path);
  });
});

describe('the sandbox end in one call', () => {
  it('a veth born on its bridge and up, its peer configured by sandboxSide (sysctls, addresses, up, default routes); then reachable', async () => {
    const host = await netns('sh');
    const box = await netns('sb');
    await nl.linkAddBridge({ netns: host.path, name: 'br0' });
    await nl.addrAdd({ netns: host.path, dev: 'br0', cidr: '10.78.0.1/24' });
    await nl.addrAdd({ netns: host.path, dev: 'br0', cidr: 'fd78::1/64', nodad: true });
    await nl.linkSet({ netns: host.path, name: 'br0', up: true });
    await nl.linkAddVeth({ netns: host.path, name: 'vs0', peerName: 'eth0', peerNetns: box.path, mtu: 1400, peerMac: '02:00:00:bb:00:02', master: 'br0', up: true });
    const br = await link(host, 'br0');
    expect(await link(host, 'vs0')).toMatchObject({ kind: 'veth', up: true, master: br!.ifindex, mtu: 1400 });
    expect((await ipLink(host, 'vs0'))?.master).toBe('br0');
    expect(await link(box, 'eth0')).toMatchObject({ up: false, mtu: 1400, mac: '02:00:00:bb:00:02' });

    const side = {
      netns: box.path, ifname: 'eth0',
      // the last one does not exist: skipped, as a kernel without IPv6 lacks the net.ipv6 keys
      sysctls: [{ key: 'net.ipv6.conf.eth0.accept_ra', value: '0' }, { key: 'net.ipv4.conf.all.accept_redirects', value: '0' }, { key: 'net.ipv6.conf.nope9.accept_ra', value: '0' }],
      addrs: [{ cidr: '10.78.0.2/24' }, { cidr: 'fd78::2/64', nodad: true }],
      gateways: ['10.78.0.1', 'fd78::1'],
    };
    await nl.sandboxSide(side);
    // Again: what is there is kept (idempotent), the routes replaced.
    await nl.sandboxSide(side);
    expect(await nl.sysctlRead({ netns: box.path, key: 'net.ipv6.conf.eth0.accept_ra' })).toBe('0');
    expect(await nl.sysctlRead({ netns: box.path, key: 'net.ipv4.conf.all.accept_redirects' })).toBe('0');
    expect(await link(box, 'eth0')).toMatchObject({ up: true });
    expect((await nl.addrList({ netns: box.path, dev: 'eth0' })).map((a) => a.cidr)).toEqual(expect.arrayContaining(['10.78.0.2/24', 'fd78::2/64']));
    const v4 = await ipj<{ dst: string; gateway?: string; dev: string }>(box, 'route', 'show', 'default');
    expect(v4).toEqual([expect.objectContaining({ dst: 'default', gateway: '10.78.0.1', dev: 'eth0' })]);
    const v6 = await ipj<{ dst: string; gateway?: string; dev: string }>(box, '-6', 'route', 'show', 'default');
    expect(v6).toEqual([expect.objectContaining({ dst: 'default', gateway: 'fd78::1', dev: 'eth0' })]);
    await run('ip', ['netns', 'exec', box.name, 'ping', '-c', '1', '-W', '2', '-q', '10.78.0.1']);

    // Bad input: a TypeError naming the value, before anything runs; a missing interface names it.
    expect(() => nl.sandboxSide({ ...side, addrs: [{ cidr: '10.78.0.300/24' }] })).toThrow(/10\.78\.0\.300/);
    expect(() => nl.sandboxSide({ ...side, sysctls: [{ key: 'kernel.hostname', value: 'x' }] })).toThrow(/kernel\.hostname/);
    expect(() => nl.sandboxSide({ ...side, gateways: ['nope'] })).toThrow(/nope/);
    const e = await rejection(nl.sandboxSide({ ...side, ifname: 'eth7' }));
    expect(e).toMatchObject({ code: 'ENODEV' });
    expect(e.message).toContain('eth7');
    // A master that does not exist: no half-made veth is left.
    const m = await rejection(nl.linkAddVeth({ netns: host.path, name: 'vs1', peerName: 'eth1', peerNetns: box.path, master: 'nobr', up: true }));
    expect(m.message).toContain('nobr');
    expect(await link(host, 'vs1')).toBeUndefined();
    expect(await link(box, 'eth1')).toBeUndefined();
    for (const ns of [box, host]) await dropNetns(ns);
  });
});

describe('connectivity', () => {
  it('pings between two containers through a bridge built entirely with the addon', async () => {
    const host = await netns('ph');
    const c1 = await netns('p1');
    const c2 = await netns('p2');
    await nl.linkAddBridge({ netns: host.path, name: 'br0' });
    await nl.addrAdd({ netns: host.path, dev: 'br0', cidr: '10.77.0.1/24' });
    await nl.addrAdd({ netns: host.path, dev: 'br0', cidr: 'fd77::1/64', nodad: true });
    await nl.linkSet({ netns: host.path, name: 'br0', up: true });
    for (const [i, c] of [[2, c1], [3, c2]] as const) {
      await nl.linkAddVeth({ netns: host.path, name: `veth${i}`, peerName: 'eth0', peerNetns: c.path });
      await nl.linkSet({ netns: host.path, name: `veth${i}`, master: 'br0', up: true });
      await nl.addrAdd({ netns: c.path, dev: 'eth0', cidr: `10.77.0.${i}/24` });
      await nl.addrAdd({ netns: c.path, dev: 'eth0', cidr: `fd77::${i}/64`, nodad: true });
      await nl.linkSet({ netns: c.path, name: 'eth0', up: true });
      await nl.routeAdd({ netns: c.path, dst: 'default', via: '10.77.0.1' });
    }
    const ping = (c: Ns, ...args: string[]) => run('ip', ['netns', 'exec', c.name, 'ping', '-c', '2', '-i', '0.05', '-W', '2', '-q', ...args]);
    await ping(c1, '10.77.0.3');
    await ping(c2, '10.77.0.2');
    await ping(c1, '10.77.0.1');
    await ping(c1, '-6', 'fd77::3');
    for (const ns of [c2, c1, host]) await dropNetns(ns);
  });
});

describe('errors', () => {
  let e: Ns;
  beforeAll(async () => {
    e = await netns('e');
    await nl.linkAddBridge({ netns: e.path, name: 'dup0' });
  });

  it('a duplicate link is EEXIST naming the link and namespace', async () => {
    const err = await rejection(nl.linkAddBridge({ netns: e.path, name: 'dup0' }));
    expect(isNativeError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EEXIST', errno: 17, syscall: 'netlink' });
    expect(err.message).toContain(`add bridge 'dup0' in netns '${e.path}'`);
  });

  it('an unknown device is ENODEV naming it', async () => {
    const err = await rejection(nl.addrAdd({ netns: e.path, dev: 'nope0', cidr: '10.0.0.1/24' }));
    expect(err).toMatchObject({ code: 'ENODEV' });
    expect(err.message).toContain(`add address 10.0.0.1/24 to 'nope0' in netns '${e.path}'`);
    const set = await rejection(nl.linkSet({ netns: e.path, name: 'dup0', master: 'nobr0' }));
    expect(set).toMatchObject({ code: 'ENODEV' });
    expect(set.message).toContain("'nobr0'");
    const route = await rejection(nl.routeAdd({ netns: e.path, dst: '10.1.0.0/16', dev: 'nope1' }));
    expect(route.message).toContain("'nope1'");
  });

  it('a bad CIDR, address, name or MAC is a TypeError naming it, before anything runs', () => {
    expect(() => nl.addrAdd({ netns: e.path, dev: 'dup0', cidr: '10.0.0.300/24' })).toThrow(TypeError);
    expect(() => nl.addrAdd({ netns: e.path, dev: 'dup0', cidr: '10.0.0.300/24' })).toThrow(/'10.0.0.300\/24'/);
    expect(() => nl.addrAdd({ netns: e.path, dev: 'dup0', cidr: '10.0.0.1' })).toThrow(/'10.0.0.1' is not a CIDR/);
    expect(() => nl.addrAdd({ netns: e.path, dev: 'dup0', cidr: 'fd00::1/129' })).toThrow(/'fd00::1\/129'/);
    expect(() => nl.routeAdd({ netns: e.path, dst: '10.0.0.1/24', dev: 'dup0' })).toThrow(/has host bits set: did you mean 10.0.0.0\/24/);
    expect(() => nl.routeAdd({ netns: e.path, dst: 'default', dev: 'dup0' })).toThrow(/needs 'via' or 'family'/);
    expect(() => nl.routeAdd({ netns: e.path, dst: '10.0.0.0/8', via: 'fd00::1' })).toThrow(/gateway 'fd00::1' is IPv6/);
    expect(() => nl.neighReplace({ netns: e.path, dev: 'dup0', ip: '10.0.0.2', mac: '02:00:00:00:00' })).toThrow(/'02:00:00:00:00' is not a MAC/);
    expect(() => nl.linkAddBridge({ netns: e.path, name: 'much-too-long-name0' })).toThrow(/'much-too-long-name0' is not a valid interface name/);
    expect(() => nl.linkAddBridge({ netns: 'relative/ns', name: 'x' })).toThrow(/'relative\/ns'/);
    expect(() => nl.linkAddMacvlan({ netns: e.path, name: 'm', parent: 'dup0', mode: 'bogus' as 'bridge' })).toThrow(/not 'bogus'/);
    expect(() => nl.linkSet({ netns: e.path, name: 'dup0', mtu: 1.5 })).toThrow(/'mtu' must be an integer/);
  });

  it('a missing namespace is ENOENT naming its path', async () => {
    const missing = `${NETNS_DIR}/${PREFIX}missing`;
    const err = await rejection(nl.linkAddBridge({ netns: missing, name: 'br9' }));
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open' });
    expect(err.message).toContain(`'${missing}'`);
    const peer = await rejection(nl.linkAddVeth({ netns: e.path, name: 'v9', peerName: 'p9', peerNetns: missing }));
    expect(peer).toMatchObject({ code: 'ENOENT' });
    expect(peer.message).toContain(`'${missing}'`);
    expect(await link(e, 'v9')).toBeUndefined();
  });

  it("the kernel's own reason (extended ack) is in the message", async () => {
    const err = await rejection(nl.linkSet({ netns: e.path, name: 'dup0', mtu: 100000 }));
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'netlink' });
    expect(err.message).toMatch(/set 'dup0' mtu 100000 in netns '.*' \[kernel: mtu greater than device maximum\]/);
  });
});

describe('timing', () => {
  it('attaching a container end (veth into a netns + addresses + routes + up) takes about a millisecond', async () => {
    const host = await netns('th');
    const box = await netns('tc');
    await nl.linkAddBridge({ netns: host.path, name: 'br0' });
    await nl.addrAdd({ netns: host.path, dev: 'br0', cidr: '10.55.0.1/16' });
    await nl.linkSet({ netns: host.path, name: 'br0', up: true });
    const attach = async (i: number) => {
      const peer = `eth${i}`;
      await nl.linkAddVeth({ netns: host.path, name: `vt${i}`, peerName: peer, peerNetns: box.path });
      await nl.linkSet({ netns: host.path, name: `vt${i}`, master: 'br0', up: true });
      await nl.addrAdd({ netns: box.path, dev: peer, cidr: `10.55.${i >> 8}.${(i & 255) + 2}/16` });
      await nl.addrAdd({ netns: box.path, dev: peer, cidr: `fd55::${i + 2}/64`, nodad: true });
      await nl.linkSet({ netns: box.path, name: peer, up: true });
      await nl.routeAdd({ netns: box.path, dst: '10.200.0.0/16', via: '10.55.0.1', dev: peer, metric: i + 1 });
    };
    const ms: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      await attach(i);
      ms.push(performance.now() - t0);
    }
    const sorted = [...ms].sort((x, y) => x - y);
    const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2);

    // The same six steps as `ip` commands, for comparison.
    const t0 = performance.now();
    const ip = (ns: Ns, ...args: string[]) => run('ip', ['-n', ns.name, ...args]);
    await ip(host, 'link', 'add', 'vip0', 'type', 'veth', 'peer', 'name', 'ethip', 'netns', box.name);
    await ip(host, 'link', 'set', 'vip0', 'master', 'br0', 'up');
    await ip(box, 'addr', 'add', '10.55.200.2/16', 'dev', 'ethip');
    await ip(box, 'addr', 'add', 'fd55::200:2/64', 'dev', 'ethip', 'nodad');
    await ip(box, 'link', 'set', 'ethip', 'up');
    await ip(box, 'route', 'add', '10.200.0.0/16', 'via', '10.55.0.1', 'dev', 'ethip', 'metric', '999');
    const viaIp = (performance.now() - t0).toFixed(2);

    console.log(`attach via netlink (6 calls), 40 runs: p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, max ${p(1)} ms (run #${ms.indexOf(Math.max(...ms)) + 1}); the same with 6 'ip' processes: ${viaIp} ms`);
    expect((await nl.linkList({ netns: box.path })).filter((l) => l.kind === 'veth' && l.up)).toHaveLength(41);
  });
});
