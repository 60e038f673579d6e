/**
 * Policy across hosts on routed networks, three hosts on one underlay with
 * etcd, each datapath: a link whose ends sit on different hosts (the
 * linker's host lets the connection out, the target's host lets it in,
 * replies pass as tracked), an unlinked member refused where it sends and
 * where it arrives; and the source check where packets arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from '../../harness/overlay-lab.js';
import { drops, eventually, networkNames, routesVia, sendUdpFrom } from './helpers.js';

for (const datapath of (process.env.DP ? [process.env.DP] : ['iptables', 'bpf']) as ('iptables' | 'bpf')[]) {
  let lab: OverlayLab;
  let h1: LabHost, h2: LabHost, h3: LabHost;
  const ip: Record<string, string> = {};

  describe(`routed policy across three hosts (${datapath} datapath)`, () => {
    beforeAll(async () => {
      lab = await OverlayLab.create(3, { datapath });
      [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    }, 120_000);

    afterAll(async () => {
      for (const h of lab?.hosts ?? []) if (h.daemon && !h.daemon.running) console.error(`${h.short} berthd exited:\n${h.daemon.logs.slice(-6000)}`);
      await lab?.destroy();
    }, 60_000);

    it('an icc=false routed network: a linker on one host reaches the target\'s exposed port on another, an unlinked member does not', async () => {
      await h1.berth('network', 'create', '-d', 'routed', '--subnet', '10.96.0.0/24', '-o', 'icc=false', 'rlink');
      for (const h of [h2, h3]) await eventually(async () => (await networkNames(h)).includes('rlink'));
      // The target on h2 echoes what it gets on its exposed TCP port; a second listener on a port it does not expose.
      const echo = (port: number) => `socat TCP-LISTEN:${port},reuseaddr,fork SYSTEM:cat`;
      await h2.berth('run', '-d', '--name', 'lt', '--network', 'rlink', '--expose', '7400', '--expose', '7500/udp', '--', 'bash', '-c', `${echo(7400)} & ${echo(7401)} & wait`);
      // lt is known on h1 once h2's entry came through the store's watch.
      await eventually(async () => (await h1.berthTry('run', '-d', '--name', 'lc', '--network', 'rlink', '--link', 'lt', '--', 'bash', '-c', echo(7402))).code === 0);
      await h1.berth('run', '-d', '--name', 'lu', '--network', 'rlink', '--', 'sleep', 'infinity');
      ip.lt = await h2.ipOf('lt', 'rlink');
      ip.lc = await h1.ipOf('lc', 'rlink');
      ip.lu = await h1.ipOf('lu', 'rlink');
      await eventually(async () => (await h2.exec('lt', 'ss', '-Hltn', 'sport = :7401')).stdout.includes('7401'));
      await eventually(async () => (await routesVia(lab, h1, '10.96.')).length === 2);
      // The control: the linker's probe succeeds (once both hosts hold the link from the store), 200 kB each way on one connection.
      const probe = (h: LabHost, s: string, port: number) =>
        h.execTry(s, 'bash', '-c', `head -c 200000 /dev/zero | tr '\\0' x | socat -T 3 - TCP:${ip.lt}:${port},connect-timeout=2 | wc -c`);
      await eventually(async () => (await probe(h1, 'lc', 7400)).stdout.trim() === '200000', 20_000);
      // The same probe from a member without the link, and from the linker to a port the target does not expose.
      const before = await drops(h1, 'icc');
      expect((await probe(h1, 'lu', 7400)).stdout.trim()).toBe('0');
      expect((await probe(h1, 'lc', 7401)).stdout.trim()).toBe('0');
      expect(await drops(h1, 'icc')).toBeGreaterThan(before);
      // The link opens one way: the target does not reach the linker (the control: the linker reaches it).
      await eventually(async () => (await h1.exec('lc', 'ss', '-Hltn', 'sport = :7402')).stdout.includes('7402'));
      const back = await h2.execTry('lt', 'bash', '-c', `echo hi | socat -T 2 - TCP:${ip.lc}:7402,connect-timeout=2`);
      expect(back.stdout.trim()).toBe('');
    }, 90_000);

    it('where it arrives: the target\'s host admits a linked source to the exposed port and drops an unlinked one', async () => {
      const got = h2.execTry('lt', 'timeout', '5', 'socat', '-u', 'UDP-RECV:7500', 'STDOUT').then((x) => x.stdout);
      await eventually(async () => (await h2.exec('lt', 'ss', '-Hlun', 'sport = :7500')).stdout.includes('7500'));
      const before = await drops(h2, 'icc');
      // Sent from h1's own namespace with the members' addresses: nothing on h1 judges them, h2 alone decides.
      await sendUdpFrom(lab, h1, ip.lc!, ip.lt!, 7500, 'linked\n');
      await sendUdpFrom(lab, h1, ip.lu!, ip.lt!, 7500, 'unlinked\n');
      const text = await got;
      expect(text).toContain('linked');
      expect(text).not.toContain('unlinked');
      expect(await drops(h2, 'icc')).toBeGreaterThan(before);
    });
  });
}
