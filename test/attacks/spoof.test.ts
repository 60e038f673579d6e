/**
 * Identity theft and back doors, on both datapaths. A hostile sandbox (root
 * in it) crafts whole Ethernet frames (craft.py udp4: every address as it
 * likes) to pass as a peer that a link or an allow-list admits; a LAN
 * neighbour routes the bridge subnets through the host to reach a sandbox's
 * unpublished port or an internal network directly, and sends frames to
 * 127.0.0.1 at the host's uplink to reach a loopback-bound publish
 * (route_localnet is on for berth's bridges on the iptables datapath).
 * Every attack has a control in which the very same crafted frame, sent by
 * the peer it imitates (or the same probe to where it may go), arrives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { World, type WorldSpec } from '../helpers/conformance.js';
import { DATAPATHS } from '../helpers/datapaths.js';

const CRAFT = projectPath('test', 'attacks', 'craft.py');

const SPEC: WorldSpec = {
  networks: [
    { name: 'linked', args: ['--subnet', '10.96.0.0/24', '-o', 'icc=false'] },
    { name: 'front', args: ['--subnet', '10.97.0.0/24'] },
    { name: 'intern', args: ['--subnet', '10.98.0.0/24', '--internal'] },
  ],
  sandboxes: [
    // q2 may reach q1's 53/udp (a link); q3 may not, and tries as q2
    { name: 'q1', network: 'linked', args: ['--ip', '10.96.0.10', '--expose', '53/udp'] },
    { name: 'q2', network: 'linked', args: ['--ip', '10.96.0.11', '--link', 'q1'] },
    { name: 'q3', network: 'linked', args: ['--ip', '10.96.0.12'] },
    // g1's 8096/udp admits f2 only; s1 tries as f2. g2's 8097 is open to all, its 8098 to the host's 127.0.0.1 only.
    { name: 'g1', network: 'front', args: ['--ip', '10.97.0.10', '-p', '8096:96/udp', '--publish-allow', '10.97.0.11/32'] },
    { name: 'g2', network: 'front', args: ['--ip', '10.97.0.13', '-p', '8097:7000', '-p', '127.0.0.1:8098:7000/udp'] },
    { name: 'f2', network: 'front', args: ['--ip', '10.97.0.11'] },
    { name: 's1', network: 'front', args: ['--ip', '10.97.0.12'] },
    { name: 'i1', network: 'intern', args: ['--ip', '10.98.0.10'] },
  ],
  listen: { tcp: [7000], udp: [53, 96, 7000] },
};

describe.each(DATAPATHS)('identity theft and back doors (%s datapath)', (datapath) => {
  let w: World;
  let tokens = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** craft.py udp4 from @from's eth0; whether @server saw the datagram's token. */
  async function crafted(from: string, id: { mac: string; ip: string }, dst: { mac: string; ip: string; port: number }, server: string): Promise<boolean> {
    const token = `s${++tokens}`;
    const netns = from === 'ext' ? w.topo.nsPath('ext') : w.sb(from).netns;
    const tx = await w.agent(from).txPackets('eth0');
    await run('nsenter', [`--net=${netns}`, '--', 'python3', CRAFT, 'udp4', 'eth0', id.mac, id.ip, dst.mac, dst.ip, String(dst.port), token], { timeoutMs: 10_000 });
    // The frames left the sender: a "not seen" below is the datapath's doing.
    expect(await w.agent(from).txPackets('eth0')).toBeGreaterThanOrEqual(tx + 3);
    await sleep(300);
    return (await w.agent(server).seen(token)) !== null;
  }
  const me = (name: string) => ({ mac: w.sb(name).mac, ip: w.sb(name).v4 });
  /** The MAC the sandbox's gateway answers ARP with (the bridge's). */
  async function gatewayMac(name: string): Promise<string> {
    const gw = w.sb(name).gateway;
    await w.agent(name).sh('ping', '-c1', '-W2', gw);
    return (JSON.parse(await w.agent(name).sh('ip', '-j', 'neigh', 'show', gw)) as { lladdr: string }[])[0]!.lladdr;
  }

  beforeAll(async () => {
    w = await World.build(datapath, SPEC);
    // The LAN neighbour routes berth's subnets through the host, as a neighbour on a flat LAN could.
    for (const sn of ['10.97.0.0/24', '10.98.0.0/24']) await run('ip', ['-n', w.topo.ns('ext'), 'route', 'add', sn, 'via', UPLINK.host]);
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  });

  it('a sandbox forging the address, or the address and MAC, of a linked peer gets nothing to the link\'s target', async () => {
    const q1 = { ...me('q1'), port: 53 };
    expect(await crafted('q2', me('q2'), q1, 'q1')).toBe(true); // control: the link admits q2's frame
    expect(await crafted('q3', me('q3'), q1, 'q1')).toBe(false); // icc=false: q3 itself is not linked
    expect(await crafted('q3', { mac: me('q3').mac, ip: me('q2').ip }, q1, 'q1')).toBe(false);
    expect(await crafted('q3', me('q2'), q1, 'q1')).toBe(false);
    const e = JSON.parse((await w.h.berthTry('explain', 'q3', 'q1', '--proto', 'udp', '--port', '53', '--src-ip', me('q2').ip, '--src-mac', me('q2').mac, '--format', 'json')).stdout) as { verdict: string; reason?: string };
    expect(e.verdict).toBe('drop');
    expect(e.reason).toMatch(/^spoof-/);
  });

  it('a sandbox forging the identity of an allow-listed peer gets nothing through the published port', async () => {
    const pub = { mac: await gatewayMac('s1'), ip: UPLINK.host, port: 8096 };
    expect(await gatewayMac('f2')).toBe(pub.mac);
    expect(await crafted('f2', me('f2'), pub, 'g1')).toBe(true); // control: the listed peer's frame is published to g1
    expect(await crafted('s1', me('s1'), pub, 'g1')).toBe(false); // the allow-list refuses s1 itself
    expect(await crafted('s1', { mac: me('s1').mac, ip: me('f2').ip }, pub, 'g1')).toBe(false);
    expect(await crafted('s1', me('f2'), pub, 'g1')).toBe(false);
  });

  it('a LAN neighbour routing through the host reaches neither an unpublished port nor an internal network', async () => {
    // control: the neighbour reaches g2 through its published port
    const ok = await w.agent('ext').probe('tcp', UPLINK.host, 8097);
    expect([ok.ok, ok.reply?.by, ok.reply?.localPort], ok.error).toEqual([true, 'g2', 7000]);
    const acceptedG = await w.agent('g2').accepted(7000);
    const acceptedI = await w.agent('i1').accepted(7000);
    expect((await w.agent('ext').probe('tcp', me('g2').ip, 7000)).ok).toBe(false);
    expect((await w.agent('ext').probe('udp', me('g2').ip, 7000)).ok).toBe(false);
    expect((await w.agent('ext').probe('tcp', me('i1').ip, 7000)).ok).toBe(false);
    expect(await w.agent('g2').accepted(7000)).toBe(acceptedG);
    expect(await w.agent('i1').accepted(7000)).toBe(acceptedI);
    const e = JSON.parse((await w.h.berthTry('explain', `external:${UPLINK.ext}`, me('g2').ip, '--port', '7000', '--format', 'json')).stdout) as { verdict: string; reason?: string };
    expect([e.verdict, e.reason]).toEqual(['drop', 'direct']);
  });

  it('a LAN frame to 127.0.0.1 at the host\'s uplink does not reach a loopback-bound publish', async () => {
    // control: the host's own 127.0.0.1 reaches it
    const token = `s${++tokens}`;
    const r = await w.agent('host').probe('udp', '127.0.0.1', 8098, { token });
    expect(r.ok, r.error).toBe(true);
    expect(await w.agent('g2').seen(token)).not.toBeNull();
    const hostMac = (JSON.parse(await w.agent('host').sh('ip', '-j', 'link', 'show', 'uplink0')) as { address: string }[])[0]!.address;
    const extMac = (JSON.parse(await w.agent('ext').sh('ip', '-j', 'link', 'show', 'eth0')) as { address: string }[])[0]!.address;
    expect(await crafted('ext', { mac: extMac, ip: UPLINK.ext }, { mac: hostMac, ip: '127.0.0.1', port: 8098 }, 'g2')).toBe(false);
    // ... and the same frame to the uplink's address, where nothing is bound, neither
    expect(await crafted('ext', { mac: extMac, ip: UPLINK.ext }, { mac: hostMac, ip: UPLINK.host, port: 8098 }, 'g2')).toBe(false);
  });
});
