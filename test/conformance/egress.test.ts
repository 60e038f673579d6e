/**
 * Egress allow-lists on both datapaths: `berth run --egress-allow`, a
 * network's `-o egress=deny`, and `berth update` changing a running
 * sandbox's list. Real TCP and UDP from sandbox namespaces to two outside
 * hosts (ext on the uplink, ext2 behind it) and to the host itself; every
 * refusal is preceded by a probe that shows the same path can succeed, and a
 * refused probe must not have reached the server (no connection accepted, no
 * datagram seen).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { EXT2, UPLINK6, World, type Agent, type WorldSpec } from '../helpers/conformance.js';
import { DATAPATHS } from '../helpers/datapaths.js';

const SPEC: WorldSpec = {
  networks: [
    { name: 'open', args: ['--subnet', '10.90.0.0/24'] },
    { name: 'closed', args: ['--subnet', '10.91.0.0/24', '-o', 'egress=deny'] },
    { name: 'dual', args: ['--ipv6', '--subnet', '10.92.0.0/24', '--subnet', 'fd00:92::/64'] },
  ],
  sandboxes: [
    // no list: the control that every outside destination is reachable
    { name: 'free', network: 'open' },
    { name: 'only-ext', network: 'open', args: ['--egress-allow', `${UPLINK.ext}/32`] },
    { name: 'port', network: 'open', args: ['--egress-allow', `${EXT2.ext2}:7001/tcp`, '--egress-allow', `${EXT2.ext2}:7000/udp`] },
    { name: 'changing', network: 'open' },
    { name: 'held', network: 'open' },
    { name: 'denied', network: 'closed' },
    { name: 'denied2', network: 'closed' },
    { name: 'excepted', network: 'closed', args: ['--egress-allow', `${EXT2.ext2}/32`] },
    { name: 'v6', network: 'dual', args: ['--egress-allow', `[${UPLINK6.ext}/128]:7000/tcp`] },
    { name: 'v6free', network: 'dual' },
  ],
  listen: { tcp: [7000], udp: [7000] },
};

let tokens = 0;

describe.each(DATAPATHS)('egress allow-lists on the %s datapath', (datapath) => {
  let w: World;

  beforeAll(async () => {
    w = await World.build(datapath, SPEC);
    for (const a of [w.agent('ext'), w.agent('ext2')]) {
      await a.listen('tcp', 7000);
      await a.listen('tcp', 7001);
      await a.listen('udp', 7000);
      await a.listen('udp', 7001);
    }
    await w.agent('host').listen('tcp', 7002);
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  /** @from reaches @agent's @port at @host. */
  async function reaches(from: string, proto: 'tcp' | 'udp', host: string, port: number, agent: string): Promise<void> {
    const r = await w.agent(from).probe(proto, host, port, { token: `e${++tokens}` });
    expect(r.ok, `${from} -> ${host}:${port}/${proto} should reach (${r.error})`).toBe(true);
    expect([r.reply?.by, r.reply?.localPort], `${from} -> ${host}:${port}/${proto}: answered by`).toEqual([agent, port]);
  }

  /** @from does not reach @agent's @port at @host, and @agent saw nothing of it. */
  async function refused(from: string, proto: 'tcp' | 'udp', host: string, port: number, agent: string): Promise<void> {
    const srv: Agent = w.agent(agent);
    const token = `e${++tokens}`;
    const before = proto === 'tcp' ? await srv.accepted(port) : 0;
    const r = await w.agent(from).probe(proto, host, port, { token });
    expect(r.ok, `${from} -> ${host}:${port}/${proto} must not reach (reply ${JSON.stringify(r.reply)})`).toBe(false);
    if (proto === 'tcp') expect(await srv.accepted(port), `${from} -> ${host}:${port}/tcp: connections ${agent} accepted`).toBe(before);
    else expect(await srv.seen(token), `${from} -> ${host}:${port}/udp: datagram seen by ${agent}`).toBeNull();
  }

  it('without a list a sandbox reaches both outside hosts (the control)', async () => {
    for (const proto of ['tcp', 'udp'] as const) {
      await reaches('free', proto, UPLINK.ext, 7000, 'ext');
      await reaches('free', proto, EXT2.ext2, 7000, 'ext2');
    }
  });

  it('an allow-list admits its destination and refuses another (TCP and UDP)', async () => {
    for (const proto of ['tcp', 'udp'] as const) {
      await reaches('only-ext', proto, UPLINK.ext, 7000, 'ext');
      await refused('only-ext', proto, EXT2.ext2, 7000, 'ext2');
    }
  });

  it('the list leaves the sandbox\'s own network and its gateway alone, and holds for the host\'s other addresses', async () => {
    await reaches('only-ext', 'tcp', w.sb('free').v4, 7000, 'free');
    await reaches('only-ext', 'udp', w.sb('free').v4, 7000, 'free');
    await reaches('only-ext', 'tcp', w.sb('only-ext').gateway, 7002, 'host');
    await reaches('free', 'tcp', UPLINK.host, 7002, 'host');
    await refused('only-ext', 'tcp', UPLINK.host, 7002, 'host');
  });

  it('a port-scoped rule admits only that port and protocol', async () => {
    await reaches('port', 'tcp', EXT2.ext2, 7001, 'ext2');
    await reaches('port', 'udp', EXT2.ext2, 7000, 'ext2');
    await refused('port', 'tcp', EXT2.ext2, 7000, 'ext2');
    await refused('port', 'udp', EXT2.ext2, 7001, 'ext2');
    await refused('port', 'tcp', UPLINK.ext, 7001, 'ext');
  });

  it('-o egress=deny: a sandbox without a list reaches nothing outside, but its network and gateway', async () => {
    for (const proto of ['tcp', 'udp'] as const) {
      await refused('denied', proto, UPLINK.ext, 7000, 'ext');
      await refused('denied', proto, EXT2.ext2, 7000, 'ext2');
      await reaches('denied', proto, w.sb('denied2').v4, 7000, 'denied2');
    }
    await reaches('denied', 'tcp', w.sb('denied').gateway, 7002, 'host');
    await refused('denied', 'tcp', UPLINK.host, 7002, 'host');
  });

  it('-o egress=deny: a sandbox\'s own list overrides the network\'s default', async () => {
    await reaches('excepted', 'tcp', EXT2.ext2, 7000, 'ext2');
    await reaches('excepted', 'udp', EXT2.ext2, 7000, 'ext2');
    await refused('excepted', 'tcp', UPLINK.ext, 7000, 'ext');
  });

  it('IPv6: a rule admits its address and port; another port, UDP and IPv4 are refused', async () => {
    await reaches('v6free', 'tcp', UPLINK6.ext, 7001, 'ext');
    await reaches('v6', 'tcp', UPLINK6.ext, 7000, 'ext');
    await refused('v6', 'tcp', UPLINK6.ext, 7001, 'ext');
    await refused('v6', 'udp', UPLINK6.ext, 7000, 'ext');
    await reaches('v6free', 'tcp', UPLINK.ext, 7000, 'ext');
    await refused('v6', 'tcp', UPLINK.ext, 7000, 'ext');
    await reaches('v6', 'tcp', w.sb('v6free').v6!, 7000, 'v6free');
  });

  it('berth update changes a running sandbox\'s list for new connections, without restarting it', async () => {
    const before = Object.values((await w.h.state()).sandboxes).find((s) => s.name === 'changing')!;
    await reaches('changing', 'tcp', UPLINK.ext, 7000, 'ext');
    await w.h.berth('update', 'changing', '--egress-allow', `${EXT2.ext2}/32`);
    await refused('changing', 'tcp', UPLINK.ext, 7000, 'ext');
    await refused('changing', 'udp', UPLINK.ext, 7000, 'ext');
    await reaches('changing', 'tcp', EXT2.ext2, 7000, 'ext2');
    await w.h.berth('update', 'changing', '--egress-allow', 'none');
    await refused('changing', 'tcp', EXT2.ext2, 7000, 'ext2');
    const inspect = JSON.parse((await w.h.berth('inspect', 'changing')).stdout) as { HostConfig: { EgressAllow?: string[] } }[];
    expect(inspect[0]!.HostConfig.EgressAllow).toEqual([]);
    await w.h.berth('update', 'changing', '--egress-clear');
    await reaches('changing', 'tcp', UPLINK.ext, 7000, 'ext');
    await reaches('changing', 'udp', EXT2.ext2, 7000, 'ext2');
    const after = Object.values((await w.h.state()).sandboxes).find((s) => s.name === 'changing')!;
    expect([after.pid, after.pidStart, after.egressAllow]).toEqual([before.pid, before.pidStart, undefined]);
  });

  it('a connection open before the list changes keeps going; the next one follows the new list', async () => {
    const echo = w.agent('ext').exec(process.execPath, ['-e', "require('net').createServer((s) => s.on('error', () => {}).pipe(s)).listen(7003); setTimeout(() => process.exit(0), 6000)"], 8000);
    await new Promise((r) => setTimeout(r, 500));
    // Sends 'a' at once and 'b' 3 s later on the same connection, and prints what came back.
    const client = w.agent('held').exec(process.execPath, ['-e', `
      const s = require('net').connect(7003, '${UPLINK.ext}');
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('connect', () => {
        s.write('a');
        setTimeout(() => s.write('b'), 3000);
        setTimeout(() => { process.stdout.write(got); process.exit(0); }, 4500);
      });
      s.on('error', (e) => { process.stdout.write('error ' + e.code); process.exit(1); });`], 8000);
    await new Promise((r) => setTimeout(r, 1000));
    await w.h.berth('update', 'held', '--egress-allow', 'none');
    await refused('held', 'tcp', UPLINK.ext, 7000, 'ext');
    const r = await client;
    expect([r.code, r.stdout], 'the open connection after the update').toEqual([0, 'ab']);
    await echo;
  });

  it('the refusals are counted as drops with reason egress (berth datapath)', async () => {
    const s = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail: { drops?: Record<string, { packets: number }> } };
    expect(s.detail.drops?.egress?.packets ?? 0).toBeGreaterThan(0);
  });

  it('bad lists are refused naming the value, and nothing changes', async () => {
    const state = JSON.stringify(await w.h.state());
    const cases: [string[], RegExp][] = [
      [['run', '-d', '--network', 'open', '--egress-allow', '198.51.100.1/24', '--', 'true'], /'198\.51\.100\.1\/24'.*host bits/],
      [['run', '-d', '--network', 'open', '--egress-allow', '2001:db8::1:53/udp', '--', 'true'], /\[PREFIX\]:PORT\/PROTO/],
      [['run', '-d', '--network', 'open', '--egress-allow', `${UPLINK.ext}:99999`, '--', 'true'], /port 99999/],
      [['run', '-d', '--network', 'host', '--egress-allow', `${UPLINK.ext}/32`, '--', 'true'], /--egress-allow needs a network/],
      [['update', 'changing', '--egress-allow', `${UPLINK.ext}:53/icmp`], /protocol 'icmp'/],
      [['update', 'changing', '--egress-allow', 'none', '--egress-allow', `${UPLINK.ext}/32`], /none cannot be combined/],
      [['update', 'changing'], /nothing to update/],
      [['update', 'nosuch', '--egress-clear'], /sandbox 'nosuch' not found/],
      [['network', 'create', '-o', 'egress=maybe', 'badnet'], /egress=maybe is invalid: expected allow or deny/],
    ];
    for (const [args, msg] of cases) {
      const r = await w.h.berthTry(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(msg);
    }
    expect(JSON.stringify(await w.h.state())).toBe(state);
  });
});
