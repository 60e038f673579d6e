/**
 * Policy across hosts on overlay networks, as on one host (issue 16): three
 * lab hosts, berthd in each with --store etcd://, real packets between
 * sandboxes on different hosts. icc=false with links (only the linker, only
 * the target's exposed ports, replies tracked, the reverse refused), internal
 * networks (members only, no way out, no publish), egress allow-lists, and
 * the receiving host's check of the inner source against the store (a frame
 * made on a host's own underlay address, carrying an endpoint the store
 * places elsewhere). Every refusal follows a probe that succeeded. Each
 * datapath in BERTH_CONFORMANCE_DATAPATHS (the overlay's programs run beside
 * either).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from '../../harness/overlay-lab.js';
import { ipv4Packet } from '../../harness/packets.js';
import { run, tryRun } from '../../src/exec.js';
import { PerCpuMap } from '../../src/bpf/map.js';
import { counter, DropReason } from '../../src/bpf/abi.js';
import { u32, OvlStat } from '../../src/datapath/overlay/abi.js';

const DATAPATHS = (process.env.BERTH_CONFORMANCE_DATAPATHS ?? 'iptables,bpf').split(',').filter(Boolean);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(200);
  }
}

/** A counter of host @h's overlay programs from their pinned map @map, summed over CPUs. */
async function ovlCount(h: LabHost, map: 'berth_ovl_drops' | 'berth_ovl_stats', which: number): Promise<bigint> {
  const id = (await readFile(join(h.stateDir, 'cluster-host-id'), 'utf8')).trim();
  const m = await PerCpuMap.fromPin(join(h.bpffs.path, `berth-${id}`, 'overlay', map), u32, counter);
  try {
    return ((await m.lookup(which)) ?? []).reduce((a, c) => a + c.packets, 0n);
  } finally {
    m.close();
  }
}
const drops = (h: LabHost, reason: number) => ovlCount(h, 'berth_ovl_drops', reason);

/** What sandbox @name on @h gets back from TCP @dst:@port within 2 s ('' when nothing answers). */
async function tcp(h: LabHost, name: string, dst: string, port: number): Promise<string> {
  const r = await h.execTry(name, 'socat', '-T', '2', '-', `TCP:${dst}:${port},connect-timeout=2`);
  return r.code === 0 ? r.stdout.trim() : '';
}

/** Datagrams sandbox @name on @h receives on UDP @port while @send runs. */
async function udpSeen(h: LabHost, name: string, port: number, send: () => Promise<unknown>): Promise<string[]> {
  const got = h.execTry(name, 'timeout', '4', 'socat', '-u', `UDP-RECV:${port}`, 'STDOUT');
  await eventually(async () => (await h.exec(name, 'ss', '-Hlun', `sport = :${port}`)).stdout.includes(String(port)));
  await send();
  return (await got).stdout.split('\n').filter(Boolean);
}

/** The MAC of sandbox @name's interface (netlink: /sys in `berth exec` is not the sandbox's). */
async function macOf(h: LabHost, name: string): Promise<string> {
  const [l] = JSON.parse((await h.exec(name, 'ip', '-j', 'link', 'show', 'eth0')).stdout) as { address: string }[];
  return l!.address;
}

for (const datapath of DATAPATHS) {
  describe(`policy across hosts on overlay networks (${datapath} datapath)`, () => {
    let lab: OverlayLab;
    let h1: LabHost, h2: LabHost, h3: LabHost;
    const ip: Record<string, string> = {};
    const outside = '198.19.0.100'; // the etcd namespace: on the underlay, not on any overlay
    const inNs = (short: string, ...cmd: string[]) => run('ip', ['netns', 'exec', lab.topo.ns(short), ...cmd]);
    /** A TCP listener in the outside namespace on @port for @secs, answering @word. */
    const outsideListener = (port: number, word: string, secs = 15) =>
      tryRun('ip', ['netns', 'exec', lab.topo.ns(lab.ns('etcd')), 'timeout', String(secs), 'socat', `TCP-LISTEN:${port},fork,reuseaddr`, `SYSTEM:echo ${word}`], { timeoutMs: (secs + 5) * 1000 });

    beforeAll(async () => {
      lab = await OverlayLab.create(3, { datapath });
      [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    }, 120_000);

    afterAll(async () => {
      for (const h of lab?.hosts ?? []) if (h.daemon && !h.daemon.running) console.error(`${h.short} berthd exited:\n${h.daemon.logs.slice(-6000)}`);
      await lab?.destroy();
    }, 60_000);

    it('icc=false: a linker on one host reaches the target\'s exposed port on another; nothing else crosses', async () => {
      await h1.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.7.0/24', '-o', 'vxlan.id=7007', '-o', 'icc=false', 'pol');
      await eventually(async () => (await h2.berthTry('network', 'inspect', 'pol')).code === 0 && (await h3.berthTry('network', 'inspect', 'pol')).code === 0);
      await h2.berth('run', '-d', '--name', 'web', '--network', 'pol', '--expose', '80', '--expose', '7600/udp', '--', 'bash', '-c',
        'socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:"echo web80" & socat TCP-LISTEN:81,fork,reuseaddr SYSTEM:"echo web81" & wait');
      ip.web = await h2.ipOf('web', 'pol');
      // The target lives on h2: h1's berth finds it in the cluster store.
      await h1.berth('run', '-d', '--name', 'linker', '--network', 'pol', '--link', 'web', '--expose', '90', '--', 'socat', 'TCP-LISTEN:90,fork,reuseaddr', 'SYSTEM:echo linker90');
      await h1.berth('run', '-d', '--name', 'other', '--network', 'pol', '--', 'sleep', 'infinity');
      ip.linker = await h1.ipOf('linker', 'pol');

      // The control: the link's port answers across hosts (the replies come back: tracked).
      await eventually(async () => (await tcp(h1, 'linker', ip.web!, 80)) === 'web80');
      // A bulk transfer both ways keeps working on the tracked connection.
      const big = await h1.exec('linker', 'bash', '-c', `head -c 300000 /dev/zero | socat -T 3 - TCP:${ip.web}:80 | wc -c`);
      expect(Number(big.stdout.trim())).toBeGreaterThan(0);

      const icc1 = await drops(h1, DropReason.Icc);
      // Not linked: refused where it enters the overlay, and counted.
      expect(await tcp(h1, 'other', ip.web!, 80)).toBe('');
      expect(await drops(h1, DropReason.Icc)).toBeGreaterThan(icc1);
      // Linked, but not an exposed port: refused.
      expect(await tcp(h1, 'linker', ip.web!, 81)).toBe('');
      // ICMP is not a link's: refused as on one host.
      expect((await h1.execTry('linker', 'ping', '-c', '1', '-W', '1', ip.web!)).code).not.toBe(0);
    });

    it('icc=false: the reverse direction is refused; a sandbox linked that way gets through', async () => {
      // The control for the reverse probe: a sandbox on h2 linked to the linker reaches its exposed port.
      await h2.berth('run', '-d', '--name', 'back', '--network', 'pol', '--link', 'linker', '--', 'sleep', 'infinity');
      await eventually(async () => (await tcp(h2, 'back', ip.linker!, 90)) === 'linker90');
      const icc2 = await drops(h2, DropReason.Icc);
      // The target opening a connection to its linker: no link that way.
      expect(await tcp(h2, 'web', ip.linker!, 90)).toBe('');
      expect(await drops(h2, DropReason.Icc)).toBeGreaterThan(icc2);
    });

    it('icc=false: the link is checked again where the frame leaves the overlay', async () => {
      // Frames made on h1's own underlay address (past h1's checks) with the linker's address and MAC:
      // to the target's exposed UDP port they arrive (the control), to another port h2 drops them.
      const [n] = JSON.parse((await h2.berth('network', 'inspect', 'pol')).stdout) as { VxlanId: number }[];
      const [lmac, wmac] = [await macOf(h1, 'linker'), await macOf(h2, 'web')];
      const made = async (port: number, word: string) => (await vxlanFrame(n!.VxlanId, lmac, wmac, ip.linker!, ip.web!, port, word)).toString('hex');
      expect(await udpSeen(h2, 'web', 7600, async () => {
        await sendVxlan(h1, h2.ip, await made(7600, 'linked'));
        await sleep(300);
      })).toContain('linked');
      const icc2 = await drops(h2, DropReason.Icc);
      expect(await udpSeen(h2, 'web', 7601, async () => {
        await sendVxlan(h1, h2.ip, await made(7601, 'unlinked'));
        await eventually(async () => (await drops(h2, DropReason.Icc)) > icc2, 5_000);
      })).toEqual([]);
      // The same linked frame made on h3's address: the store places the linker on h1, not h3.
      const src0 = await drops(h2, DropReason.OverlaySource);
      expect(await udpSeen(h2, 'web', 7600, async () => {
        await sendVxlan(h3, h2.ip, await made(7600, 'from-h3'));
        await eventually(async () => (await drops(h2, DropReason.OverlaySource)) > src0, 5_000);
      })).toEqual([]);
    });

    it('internal overlay network: members reach each other across hosts, nothing gets out, nothing is published', async () => {
      await h1.berth('network', 'create', '-d', 'overlay', '--internal', '--subnet', '10.0.8.0/24', '-o', 'vxlan.id=7008', 'int');
      await h1.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.10.0/24', '-o', 'vxlan.id=7010', 'open');
      await eventually(async () => (await h3.berthTry('network', 'inspect', 'int')).code === 0 && (await h3.berthTry('network', 'inspect', 'open')).code === 0);
      await h1.berth('run', '-d', '--name', 'i1', '--network', 'int', '--', 'sleep', 'infinity');
      await h3.berth('run', '-d', '--name', 'i3', '--network', 'int', '-p', '8083:80', '--', 'socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo i3');
      await h3.berth('run', '-d', '--name', 'o3', '--network', 'open', '-p', '8084:80', '--', 'socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo o3');
      ip.i3 = await h3.ipOf('i3', 'int');
      // Members across hosts: TCP and ping.
      await eventually(async () => (await tcp(h1, 'i1', ip.i3!, 80)) === 'i3');
      await h1.exec('i1', 'ping', '-c', '2', '-i', '0.2', '-W', '2', ip.i3!);

      // No way out: the outside answers a sandbox of an ordinary overlay network (the control), not a member of the internal one.
      const listener = outsideListener(7200, 'outside');
      await eventually(async () => (await tcp(h3, 'o3', outside, 7200)) === 'outside');
      expect(await tcp(h3, 'i3', outside, 7200)).toBe('');
      expect(await tcp(h1, 'i1', outside, 7200)).toBe('');
      // No publish: o3's published port answers from the outside (the control), i3's does not.
      await eventually(async () => (await tryRun('ip', ['netns', 'exec', lab.topo.ns(lab.ns('etcd')), 'socat', '-T', '2', '-', `TCP:${h3.ip}:8084,connect-timeout=2`])).stdout.includes('o3'));
      expect((await tryRun('ip', ['netns', 'exec', lab.topo.ns(lab.ns('etcd')), 'socat', '-T', '2', '-', `TCP:${h3.ip}:8083,connect-timeout=2`])).stdout).not.toContain('i3');
      await listener;
    }, 60_000);

    it('internal: no way out through a member on another host, and no host gets a stranger\'s frame in', async () => {
      // i1 routes the outside via i3 (a member on h3): its frames carry i3's MAC and the outside's address.
      await h1.exec('i1', 'ip', 'route', 'add', '198.51.100.0/24', 'via', ip.i3!);
      const int1 = await drops(h1, DropReason.Internal);
      const encap = await ovlCount(h1, 'berth_ovl_stats', OvlStat.TxEncap);
      await h1.exec('i1', 'bash', '-c', 'echo x > /dev/udp/198.51.100.1/9');
      await eventually(async () => (await drops(h1, DropReason.Internal)) > int1, 5_000);
      // The control: to i3 itself, the same path tunnels.
      await h1.exec('i1', 'bash', '-c', `echo x > /dev/udp/${ip.i3}/9`);
      await eventually(async () => (await ovlCount(h1, 'berth_ovl_stats', OvlStat.TxEncap)) > encap, 5_000);

      // A registered host (h2, no member of int) sending a frame with an address the store does not know: dropped at h3.
      const [n] = JSON.parse((await h3.berth('network', 'inspect', 'int')).stdout) as { VxlanId: number }[];
      const i3mac = await macOf(h3, 'i3');
      const got = await udpSeen(h3, 'i3', 7400, async () => {
        const s0 = await drops(h3, DropReason.OverlaySource);
        await sendVxlan(h2, h3.ip, (await vxlanFrame(n!.VxlanId, '02:00:00:00:00:77', i3mac, '10.0.8.77', ip.i3!, 7400, 'stranger')).toString('hex'));
        await eventually(async () => (await drops(h3, DropReason.OverlaySource)) > s0, 5_000);
        // The control: i1's own datagram over the real tunnel arrives.
        await h1.exec('i1', 'bash', '-c', `echo member > /dev/udp/${ip.i3}/7400`);
      });
      expect(got).toContain('member');
      expect(got).not.toContain('stranger');
    }, 40_000);

    it('a receiving host accepts an inner source only from the host the store places it on', async () => {
      await h1.berth('run', '-d', '--name', 'a1', '--network', 'open', '--', 'sleep', 'infinity');
      await h2.berth('run', '-d', '--name', 'b2', '--network', 'open', '--', 'sleep', 'infinity');
      await h3.berth('run', '-d', '--name', 'c3', '--network', 'open', '--', 'sleep', 'infinity');
      [ip.a1, ip.b2, ip.c3] = [await h1.ipOf('a1', 'open'), await h2.ipOf('b2', 'open'), await h3.ipOf('c3', 'open')];
      await eventually(async () => (await h1.execTry('a1', 'ping', '-c', '1', '-W', '1', ip.b2!)).code === 0);
      const [n] = JSON.parse((await h2.berth('network', 'inspect', 'open')).stdout) as { VxlanId: number }[];
      const [a1mac, b2mac, c3mac] = [await macOf(h1, 'a1'), await macOf(h2, 'b2'), await macOf(h3, 'c3')];
      const frame = async (src: string, smac: string, word: string) => (await vxlanFrame(n!.VxlanId, smac, b2mac, src, ip.b2!, 7300, word)).toString('hex');

      const src0 = await drops(h2, DropReason.OverlaySource);
      const got = await udpSeen(h2, 'b2', 7300, async () => {
        // Made on h1's underlay address: a1's own address passes (the control) ...
        await sendVxlan(h1, h2.ip, await frame(ip.a1!, a1mac, 'real'));
        // ... c3's (the store places it on h3) does not, with c3's MAC or a1's.
        await sendVxlan(h1, h2.ip, await frame(ip.c3!, c3mac, 'forged'));
        await sendVxlan(h1, h2.ip, await frame(ip.c3!, a1mac, 'forged2'));
        // Nor b2's own address, which is h2's.
        await sendVxlan(h1, h2.ip, await frame(ip.b2!, a1mac, 'own'));
        await sleep(500);
      });
      expect(got).toContain('real');
      expect(got.filter((w) => w !== 'real')).toEqual([]);
      expect(await drops(h2, DropReason.OverlaySource)).toBeGreaterThanOrEqual(src0 + 3n);
      // Counted by reason in the metrics too, on either datapath.
      const metrics = (await run('curl', ['-s', '--unix-socket', h2.socket, 'http://berth/metrics'])).stdout;
      expect(metrics).toMatch(/berth_datapath_drops_total\{reason="overlay-source"\} [1-9]/);
    });

    it('a sandbox sending as another endpoint is stopped where the frame enters the overlay', async () => {
      const got = await udpSeen(h2, 'b2', 7301, async () => {
        // The control: from its own address.
        await h1.exec('a1', 'bash', '-c', `echo own > /dev/udp/${ip.b2}/7301`);
        // c3's address on a1's interface: the datapath of h1 refuses what it sends from it.
        await h1.exec('a1', 'ip', 'addr', 'add', `${ip.c3}/32`, 'dev', 'eth0');
        const spoof0 = await drops(h1, DropReason.SpoofIp);
        await h1.exec('a1', 'python3', '-c', `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('${ip.c3}', 0)); s.sendto(b'spoofed\\n', ('${ip.b2}', 7301))`);
        await eventually(async () => (await drops(h1, DropReason.SpoofIp)) > spoof0, 5_000);
        await h1.exec('a1', 'ip', 'addr', 'del', `${ip.c3}/32`, 'dev', 'eth0');
      });
      expect(got).toContain('own');
      expect(got).not.toContain('spoofed');
    });

    it('egress allow-lists hold across hosts: members reachable, the outside only as listed, no way out through a peer', async () => {
      await h1.berth('run', '-d', '--name', 'e1', '--network', 'open', '--egress-allow', `${outside}:7500/tcp`, '--', 'sleep', 'infinity');
      const l1 = outsideListener(7500, 'listed');
      const l2 = outsideListener(7501, 'unlisted');
      // Listed: reached (through its own host).
      await eventually(async () => (await tcp(h1, 'e1', outside, 7500)) === 'listed');
      // Unlisted: a1 (no list) reaches it, the control; e1 does not.
      await eventually(async () => (await tcp(h1, 'a1', outside, 7501)) === 'unlisted');
      expect(await tcp(h1, 'e1', outside, 7501)).toBe('');
      // Members of its network on other hosts are not "outside": reached.
      const got = await udpSeen(h2, 'b2', 7302, () => h1.exec('e1', 'bash', '-c', `echo member > /dev/udp/${ip.b2}/7302`));
      expect(got).toContain('member');
      // Routing the outside through b2 (a member on h2): a1's frames tunnel (the control), e1's are dropped.
      for (const s of ['a1', 'e1']) await h1.exec(s, 'ip', 'route', 'add', '198.51.100.0/24', 'via', ip.b2!);
      const encap = await ovlCount(h1, 'berth_ovl_stats', OvlStat.TxEncap);
      await h1.exec('a1', 'bash', '-c', 'echo x > /dev/udp/198.51.100.1/9');
      await eventually(async () => (await ovlCount(h1, 'berth_ovl_stats', OvlStat.TxEncap)) > encap, 5_000);
      const eg = await drops(h1, DropReason.Egress);
      await h1.exec('e1', 'bash', '-c', 'echo x > /dev/udp/198.51.100.1/9');
      await eventually(async () => (await drops(h1, DropReason.Egress)) > eg, 5_000);
      await Promise.all([l1, l2]);
    }, 60_000);
  });
}

/** Sends VXLAN payload @hex (header and inner frame) from host @from's own namespace (its underlay address) to @to:4789. */
async function sendVxlan(from: LabHost, to: string, hex: string): Promise<void> {
  await run('ip', ['netns', 'exec', from.lab.topo.ns(from.short), 'python3', '-c',
    `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes.fromhex('${hex}'), ('${to}', 4789))`]);
}

/** A VXLAN header for @vni and an inner Ethernet/IPv4/UDP frame @smac -> @dmac, @src -> @dst:@dport carrying @word. */
async function vxlanFrame(vni: number, smac: string, dmac: string, src: string, dst: string, dport: number, word = 'x'): Promise<Buffer> {
  const pkt = ipv4Packet({ src, dst, l4: 'udp', sport: 40001, dport, payload: Buffer.from(`${word}\n`) });
  Buffer.from(dmac.replace(/:/g, ''), 'hex').copy(pkt, 0);
  Buffer.from(smac.replace(/:/g, ''), 'hex').copy(pkt, 6);
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUIntBE(vni, 4, 3);
  return Buffer.concat([h, pkt]);
}
