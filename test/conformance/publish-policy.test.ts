/**
 * The operator's publish policy (berthd --publish-allow, -o publish.allow) on
 * every datapath: only its sources reach published ports, before a publish's
 * own allow-list (which can only narrow it); the host's 127.0.0.1 is the host.
 * Each refusal has its control: the same probe from the same source reached
 * before the policy said no (the first case runs without a host-wide
 * policy), or the same source reaches another publish or the host itself.
 * The policy holds while berthd is dead, is kept across a restart, and a
 * restart with another policy applies that one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { run } from '../../src/exec.js';
import { EXT2, UPLINK6, World, type WorldSpec } from '../helpers/conformance.js';
import { DATAPATHS } from '../helpers/datapaths.js';


/** A second address of ext on the uplink's subnets: inside the host-wide policy's /24, outside its IPv6 /128. */
const EXT_B = '198.18.0.3';
const EXT_B6 = '2001:db8:18::3';
const POLICY = `198.18.0.0/24,${UPLINK6.ext}/128`;

const SPEC: WorldSpec = {
  networks: [
    { name: 'open', args: ['--subnet', '10.90.0.0/24'] },
    { name: 'narrow', args: ['--subnet', '10.91.0.0/24', '-o', `publish.allow=${UPLINK.ext}/32,198.51.100.0/24`] },
    { name: 'dual', args: ['--ipv6', '--subnet', '10.92.0.0/24', '--subnet', 'fd00:92::/64'] },
  ],
  sandboxes: [
    { name: 'o1', network: 'open', args: ['-p', '8080:80'] },
    { name: 'o2', network: 'open', args: ['-p', '8082:82', '--publish-allow', `${EXT_B}/32`, '--publish-allow', '198.51.100.0/24'] },
    { name: 'n1', network: 'narrow', args: ['-p', '8083:83'] },
    { name: 'd1', network: 'dual', args: ['-p', '8086:86'] },
  ],
  listen: { tcp: [80, 82, 83, 86], udp: [] },
};

describe.each(DATAPATHS)('the operator\'s publish policy (%s datapath)', (datapath) => {
  let w: World;

  /** The agent that answered a TCP probe and the client address it saw, or null when nothing answered. */
  async function probe(from: string, to: string, port: number, src?: string): Promise<{ by: string; peer: string } | null> {
    const r = await w.agent(from).probe('tcp', to, port, src ? { src } : {});
    return r.ok ? { by: r.reply!.by, peer: r.reply!.peer } : null;
  }
  const explain = async (src: string, dst: string, port: number) =>
    JSON.parse((await w.h.berthTry('explain', `external:${src}`, dst, '--port', String(port), '--format', 'json')).stdout) as { verdict: string; reason?: string; explanation: string };
  const restart = async (extra: string[]) => {
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', datapath, ...extra]);
  };
  const drops = async () => {
    const d = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail?: { drops?: Record<string, { packets: number }> } };
    return d.detail?.drops?.['publish-policy']?.packets ?? 0;
  };

  beforeAll(async () => {
    w = await World.build(datapath, SPEC);
    await run('ip', ['-n', w.topo.ns('ext'), 'addr', 'add', `${EXT_B}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', w.topo.ns('ext'), 'addr', 'add', `${EXT_B6}/64`, 'dev', 'eth0', 'nodad']);
    await w.agent('host').listen('tcp', 7000);
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  });

  it('a network\'s -o publish.allow alone: its sources reach, others are refused by the policy (controls: the same sources reach a network without one)', async () => {
    expect(await probe('ext', UPLINK.host, 8080, EXT_B)).toEqual({ by: 'o1', peer: EXT_B });
    expect(await probe('ext2', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: EXT2.ext2 });
    expect(await probe('ext', UPLINK.host, 8083)).toEqual({ by: 'n1', peer: UPLINK.ext });
    expect(await probe('ext2', UPLINK.host, 8083)).toEqual({ by: 'n1', peer: EXT2.ext2 });
    expect(await probe('ext', UPLINK.host, 8083, EXT_B)).toBeNull();
    // A sandbox reaching a publish through the host (hairpin) is a source like any other.
    expect(await probe('o2', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: w.sb('o2').v4 });
    expect(await probe('o2', UPLINK.host, 8083)).toBeNull();
    const e = await explain(EXT_B, UPLINK.host, 8083);
    expect([e.verdict, e.reason], e.explanation).toEqual(['drop', 'publish-policy']);
    expect(await drops()).toBeGreaterThan(0);
  });

  it('berthd --publish-allow: only its sources reach any published port; a publish\'s own list narrows it; the host\'s loopback is the host', async () => {
    await restart(['--publish-allow', POLICY]);
    expect(await probe('ext', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: UPLINK.ext });
    expect(await probe('ext', UPLINK.host, 8080, EXT_B)).toEqual({ by: 'o1', peer: EXT_B });
    // ext2 reached 8080 before the policy (above), and still reaches the host itself.
    expect(await probe('ext2', UPLINK.host, 7000)).toEqual({ by: 'host', peer: EXT2.ext2 });
    expect(await probe('ext2', UPLINK.host, 8080)).toBeNull();
    // The network's list and the host's combine: only ext's first address is in both.
    expect(await probe('ext', UPLINK.host, 8083)).toEqual({ by: 'n1', peer: UPLINK.ext });
    expect(await probe('ext2', UPLINK.host, 8083)).toBeNull();
    // o2 lists EXT_B and ext2's network: the policy leaves it EXT_B.
    expect(await probe('ext', UPLINK.host, 8082, EXT_B)).toEqual({ by: 'o2', peer: EXT_B });
    expect(await probe('ext', UPLINK.host, 8082)).toBeNull();
    expect(await probe('ext2', UPLINK.host, 8082)).toBeNull();
    // IPv6 follows the same policy.
    expect(await probe('ext', UPLINK6.host, 8086, UPLINK6.ext)).toEqual({ by: 'd1', peer: UPLINK6.ext });
    expect(await probe('ext', UPLINK6.host, 8086, EXT_B6)).toBeNull();
    // o2 reached 8080 through the host before the policy; its subnet is not in it.
    expect(await probe('o2', UPLINK.host, 8080)).toBeNull();
    // The host's own 127.0.0.1 is not a neighbour.
    expect((await probe('host', '127.0.0.1', 8080))?.by).toBe('o1');
    // explain names which list decided.
    expect((await explain(EXT2.ext2, UPLINK.host, 8080)).reason).toBe('publish-policy');
    expect((await explain(EXT2.ext2, UPLINK.host, 8082)).reason).toBe('publish-policy');
    expect((await explain(UPLINK.ext, UPLINK.host, 8082)).reason).toBe('allowlist');
    expect((await explain(UPLINK.ext, UPLINK.host, 8080)).verdict).toBe('pass');
  });

  it('berth exposure shows what reaches each published port and where each limit comes from', async () => {
    const e = JSON.parse((await w.h.berth('exposure', '--format', 'json')).stdout) as { published: { hostPorts: string; allow: string[]; limits: { by: string; allow: string[] }[] }[] };
    const at = (port: string) => e.published.filter((p) => p.hostPorts === port);
    expect(at('8080').map((p) => [p.allow, p.limits])).toEqual([[['127.0.0.0/8', '198.18.0.0/24'], [{ by: 'berthd --publish-allow', allow: ['198.18.0.0/24'] }]]]);
    expect(at('8082').map((p) => [p.allow, p.limits])).toEqual([[[`${EXT_B}/32`], [
      { by: 'berthd --publish-allow', allow: ['198.18.0.0/24'] }, { by: 'publish --publish-allow', allow: [`${EXT_B}/32`, '198.51.100.0/24'] },
    ]]]);
    expect(at('8083').map((p) => p.limits)).toEqual([[{ by: 'berthd --publish-allow and network narrow -o publish.allow', allow: [`${UPLINK.ext}/32`] }]]);
    const text = (await w.h.berth('exposure')).stdout;
    expect(text).toMatch(/LIMITED BY/);
    expect(text).toMatch(/8083 .*berthd --publish-allow and network narrow -o publish.allow/);
  });

  it('holds while berthd is dead, and a restart with the same flag keeps it', async () => {
    await w.h.kill('SIGKILL');
    expect(await probe('ext', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: UPLINK.ext });
    expect(await probe('ext2', UPLINK.host, 8080)).toBeNull();
    await w.h.start(['--datapath', datapath, '--publish-allow', POLICY]);
    expect(await probe('ext', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: UPLINK.ext });
    expect(await probe('ext2', UPLINK.host, 8080)).toBeNull();
  });

  it('a restart with another policy applies that one, and without one every source reaches again', async () => {
    await restart(['--publish-allow', '198.51.100.0/24']);
    expect(await probe('ext2', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: EXT2.ext2 });
    expect(await probe('ext', UPLINK.host, 8080)).toBeNull();
    await restart([]);
    expect(await probe('ext', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: UPLINK.ext });
    expect(await probe('ext2', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: EXT2.ext2 });
  });

  it('a bad prefix is refused naming it, and nothing is lost', async () => {
    await w.h.kill('SIGKILL');
    await expect(w.h.start(['--datapath', datapath, '--publish-allow', '198.18.0.0/24,198.51.100/24'])).rejects.toThrow(/'198.51.100\/24' is not an address\/prefix/);
    await w.h.start(['--datapath', datapath]);
    const bad = await w.h.berthTry('network', 'create', '--subnet', '10.93.0.0/24', '-o', 'publish.allow=10.0.0.0/33', 'nope');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("'10.0.0.0/33' is not an address/prefix");
    expect(await probe('ext', UPLINK.host, 8080)).toEqual({ by: 'o1', peer: UPLINK.ext });
  });
});
