/**
 * bpf/overlay.c through BPF_PROG_TEST_RUN: what the sandbox-side program
 * does with a frame, given the maps (answers ARP for a remote endpoint with
 * the exact reply bytes, tunnels a frame for a remote MAC, leaves the rest
 * to the bridge), and that the tunnel-side program drops a frame that came
 * without tunnel metadata. Acceptance by VNI and registered host needs real
 * tunnel metadata: test/overlay/overlay.test.ts covers it with real packets.
 * Maps are pinned in a private bpffs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject } from '../../src/bpf/object.js';
import { counter } from '../../src/bpf/abi.js';
import { bpfObjectPath } from '../../src/paths.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { hostKey, ovlGuard, ovlIpKey, ovlLinkKey, ovlMacKey, ovlNeigh, ovlPolicy, ovlPort, ovlRemote, u32, OvlPolicyFlag, OvlStat } from '../../src/datapath/overlay/abi.js';
import { DropReason } from '../../src/bpf/abi.js';
import { arpRequest, ipv4Packet } from '../../harness/packets.js';

const TC_ACT_UNSPEC = -1;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const LO = 1; // BPF_PROG_TEST_RUN runs skb programs as if on the caller's loopback
const VNI = 4242;
const REMOTE_MAC = '02:b7:0a:00:05:03';

let fs: PrivateBpffs;
let obj: BpfObject;

const mac = (m: string) => Buffer.from(m.replace(/:/g, ''), 'hex');

async function stat(which: number): Promise<bigint> {
  const per = await obj.perCpuMap('berth_ovl_stats', u32, counter).lookup(which);
  return (per ?? []).reduce((a, c) => a + c.packets, 0n);
}

/** An ARP request for @target as a sandbox broadcasts it. */
function arpFor(target: string): Buffer {
  const p = arpRequest();
  mac('ff:ff:ff:ff:ff:ff').copy(p, 0);
  Buffer.from(target.split('.').map(Number)).copy(p, 14 + 24);
  return p;
}

beforeAll(async () => {
  fs = await PrivateBpffs.create();
  obj = await BpfObject.load(bpfObjectPath('overlay'), { pinRoot: fs.path });
  await obj.map('berth_ovl_ports', u32, ovlPort).update(LO, { vni: VNI, vxlanIfindex: LO });
  await obj.map('berth_ovl_remote_ips', ovlIpKey, ovlNeigh).update({ vni: VNI, ip: '10.0.5.3' }, { mac: REMOTE_MAC });
  await obj.map('berth_ovl_remote_macs', ovlMacKey, ovlRemote).update({ vni: VNI, mac: REMOTE_MAC }, { hostIp: '198.19.0.13' });
  await obj.map('berth_ovl_hosts', hostKey, u32).update('198.19.0.13', 1);
  // The port's own addresses: harness/packets.ts frames come from 02:00:00:00:00:01.
  await obj.map('berth_ovl_guard', u32, ovlGuard).update(LO, { mac: '02:00:00:00:00:01', v4: '10.0.5.2', flags: 0 });
});

async function dropped(reason: number): Promise<bigint> {
  const per = await obj.perCpuMap('berth_ovl_drops', u32, counter).lookup(reason);
  return (per ?? []).reduce((a, c) => a + c.packets, 0n);
}

/** A UDP frame from the port (10.0.5.2) to the remote endpoint's MAC, for @dst:@dport. */
function toRemote(dst = '10.0.5.3', dport = 80, src = '10.0.5.2'): Buffer {
  const pkt = ipv4Packet({ src, dst, l4: 'udp', sport: 40000, dport });
  mac(REMOTE_MAC).copy(pkt, 0);
  return pkt;
}

afterAll(async () => {
  obj?.close();
  await fs?.release();
});

describe('bpf/overlay.c under BPF_PROG_TEST_RUN', () => {
  it('answers an ARP request for a remote endpoint with its MAC, back out of the same port', async () => {
    const before = await stat(OvlStat.TxArpReply);
    const req = arpFor('10.0.5.3');
    const res = await obj.program('berth_ovl_from_sandbox').testRun(req);
    expect(res.retval).toBe(TC_ACT_REDIRECT);
    // The reply: to the asker, from the remote MAC; op 2; sender = remote (MAC, IP), target = the asker.
    const want = Buffer.from(req);
    req.copy(want, 0, 6, 12); // eth dst = the asker
    mac(REMOTE_MAC).copy(want, 6);
    want.writeUInt16BE(2, 14 + 6);
    mac(REMOTE_MAC).copy(want, 14 + 8);
    Buffer.from([10, 0, 5, 3]).copy(want, 14 + 14);
    req.copy(want, 14 + 18, 14 + 8, 14 + 14); // tha = the asker's MAC
    req.copy(want, 14 + 24, 14 + 14, 14 + 18); // tpa = the asker's IP
    expect(res.data.toString('hex')).toBe(want.toString('hex'));
    expect(await stat(OvlStat.TxArpReply)).toBe(before + 1n);
  });

  it('leaves ARP for an address the cluster does not know to the local bridge, unchanged', async () => {
    const req = arpFor('10.0.5.77');
    const res = await obj.program('berth_ovl_from_sandbox').testRun(req);
    expect(res.retval).toBe(TC_ACT_UNSPEC);
    expect(res.data.toString('hex')).toBe(req.toString('hex'));
  });

  it('tunnels a frame for a remote MAC (tunnel key set, redirected to the vxlan device) without touching it', async () => {
    const before = await stat(OvlStat.TxEncap);
    const pkt = ipv4Packet({ src: '10.0.5.2', dst: '10.0.5.3', l4: 'udp' });
    mac(REMOTE_MAC).copy(pkt, 0);
    const res = await obj.program('berth_ovl_from_sandbox').testRun(pkt);
    expect(res.retval).toBe(TC_ACT_REDIRECT);
    expect(res.data.toString('hex')).toBe(pkt.toString('hex'));
    expect(await stat(OvlStat.TxEncap)).toBe(before + 1n);
  });

  it('refuses to tunnel a frame from an address or MAC not the port\'s own (counted by reason)', async () => {
    const sandbox = obj.program('berth_ovl_from_sandbox');
    expect((await sandbox.testRun(toRemote())).retval).toBe(TC_ACT_REDIRECT); // the control
    const ip0 = await dropped(DropReason.SpoofIp);
    expect((await sandbox.testRun(toRemote('10.0.5.3', 80, '10.0.5.9'))).retval).toBe(TC_ACT_SHOT);
    expect(await dropped(DropReason.SpoofIp)).toBe(ip0 + 1n);
    const forged = toRemote();
    mac('02:00:00:00:00:99').copy(forged, 6);
    const mac0 = await dropped(DropReason.SpoofMac);
    expect((await sandbox.testRun(forged)).retval).toBe(TC_ACT_SHOT);
    expect(await dropped(DropReason.SpoofMac)).toBe(mac0 + 1n);
  });

  it('icc=false: only a link\'s port crosses; internal: only the endpoint behind the MAC', async () => {
    const sandbox = obj.program('berth_ovl_from_sandbox');
    const policy = obj.map('berth_ovl_policy', u32, ovlPolicy);
    const links = obj.map('berth_ovl_links', ovlLinkKey, u32);
    try {
      await policy.update(VNI, { flags: OvlPolicyFlag.NoIcc });
      const icc0 = await dropped(DropReason.Icc);
      expect((await sandbox.testRun(toRemote('10.0.5.3', 80))).retval).toBe(TC_ACT_SHOT);
      expect(await dropped(DropReason.Icc)).toBe(icc0 + 1n);
      await links.update({ vni: VNI, client: '10.0.5.2', target: '10.0.5.3', port: 80, proto: 'udp' }, 1);
      expect((await sandbox.testRun(toRemote('10.0.5.3', 80))).retval).toBe(TC_ACT_REDIRECT);
      // Another port of the same target is still refused.
      expect((await sandbox.testRun(toRemote('10.0.5.3', 81))).retval).toBe(TC_ACT_SHOT);

      await policy.update(VNI, { flags: OvlPolicyFlag.Internal });
      expect((await sandbox.testRun(toRemote('10.0.5.3', 9))).retval).toBe(TC_ACT_REDIRECT);
      // Through the remote endpoint's MAC to an address beyond the network: no way out.
      const int0 = await dropped(DropReason.Internal);
      expect((await sandbox.testRun(toRemote('198.51.100.1', 9))).retval).toBe(TC_ACT_SHOT);
      expect(await dropped(DropReason.Internal)).toBe(int0 + 1n);
    } finally {
      await policy.delete(VNI);
      await links.delete({ vni: VNI, client: '10.0.5.2', target: '10.0.5.3', port: 80, proto: 'udp' });
    }
  });

  it('leaves a frame for a MAC of no remote endpoint (local, or the gateway) to the bridge', async () => {
    const pkt = ipv4Packet({ src: '10.0.5.2', dst: '10.0.5.9', l4: 'tcp' });
    const res = await obj.program('berth_ovl_from_sandbox').testRun(pkt);
    expect(res.retval).toBe(TC_ACT_UNSPEC);
  });

  it('drops a frame that reached the tunnel side without tunnel metadata, and counts it', async () => {
    const before = await stat(OvlStat.RxNoKey);
    const res = await obj.program('berth_ovl_from_tunnel').testRun(ipv4Packet({ l4: 'udp' }));
    expect(res.retval).toBe(TC_ACT_SHOT);
    expect(await stat(OvlStat.RxNoKey)).toBe(before + 1n);
  });
});
