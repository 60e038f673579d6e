/**
 * Host lifecycle across three hosts (the overlay lab, etcd, berthd with
 * --host-grace 3): `berth node ls` lists the hosts; a host whose berthd is
 * frozen (SIGSTOP) or killed, so that its registration lapses (a 10 s lease)
 * without it leaving, has its endpoints withdrawn on the others once the
 * grace has passed (no ARP answer or tunnel entry, a ping that worked fails,
 * its sandbox's name no longer resolves), and everything comes back when it
 * returns. Real packets over VXLAN.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from '../../harness/overlay-lab.js';
import { BpfMap } from '../../src/bpf/map.js';
import { ovlIpKey, ovlNeigh } from '../../src/datapath/overlay/abi.js';
import type { NodeView } from '../../src/controller/core.js';
import { BerthHost as TestHost } from '../../harness/berthd.js';
import { testTopology } from '../helpers/kernel.js';

const json = async <T>(p: Promise<{ stdout: string }>): Promise<T> => JSON.parse((await p).stdout) as T;

async function eventually(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The remote endpoint addresses host @h answers ARP for and tunnels to, from its pinned map. */
async function remoteIps(h: LabHost): Promise<string[]> {
  const id = (await readFile(join(h.stateDir, 'cluster-host-id'), 'utf8')).trim();
  const m = await BpfMap.fromPin(join(h.bpffs.path, `berth-${id}`, 'overlay', 'berth_ovl_remote_ips'), ovlIpKey, ovlNeigh);
  try {
    return (await m.entries()).map(([k]) => k.ip);
  } finally {
    m.close();
  }
}

const nodes = (h: LabHost) => json<NodeView[]>(h.berth('node', 'ls', '--format', 'json'));
const hostId = async (h: LabHost) => (await readFile(join(h.stateDir, 'cluster-host-id'), 'utf8')).trim();
const pings = async (h: LabHost, from: string, to: string) => (await h.execTry(from, 'ping', '-c', '1', '-W', '1', to)).code === 0;
const resolves = async (h: LabHost, from: string, name: string) => (await h.execTry(from, 'getent', 'hosts', name)).code === 0;

for (const datapath of ['iptables', 'bpf'] as const) {
  describe(`host lifecycle across three hosts (${datapath} datapath)`, () => {
    let lab: OverlayLab;
    let h1: LabHost, h2: LabHost, h3: LabHost;
    const ip: Record<string, string> = {};
    const id: Record<string, string> = {};

    beforeAll(async () => {
      lab = await OverlayLab.create(3, { datapath, berthdArgs: ['--host-grace', '3'] });
      [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
      for (const [k, h] of [['h1', h1], ['h2', h2], ['h3', h3]] as const) id[k] = await hostId(h);
      await h1.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.31.0/24', 'lc');
      await eventually(async () => (await h2.berthTry('network', 'inspect', 'lc')).code === 0 && (await h3.berthTry('network', 'inspect', 'lc')).code === 0, 15_000, 'lc on every host');
      for (const [h, n] of [[h1, 'l1'], [h2, 'l2'], [h3, 'l3']] as const) {
        await h.berth('run', '-d', '--name', n, '--network', 'lc', '--', 'sleep', 'infinity');
        ip[n] = await h.ipOf(n, 'lc');
      }
    }, 180_000);

    afterAll(async () => {
      // A frozen berthd would not stop on SIGTERM.
      for (const h of lab?.hosts ?? []) if (h.pid) try { process.kill(h.pid, 'SIGCONT'); } catch { /* gone */ }
      await lab?.destroy();
    }, 60_000);

    it('berth node ls lists every host, ready, with its underlay address and endpoints', async () => {
      const list = await nodes(h1);
      expect(list.map((n) => n.id).sort()).toEqual([id.h1, id.h2, id.h3].sort());
      expect(list[0]).toMatchObject({ id: id.h1, self: true, state: 'ready', underlay: h1.ip, withdrawn: false, endpoints: 1 });
      for (const [k, h] of [['h2', h2], ['h3', h3]] as const) {
        expect(list.find((n) => n.id === id[k])).toMatchObject({ self: false, state: 'ready', underlay: h.ip, withdrawn: false, endpoints: 1 });
      }
      const text = (await h1.berth('node', 'ls')).stdout;
      expect(text.split('\n')[0]).toMatch(/^HOST ID\s+NAME\s+UNDERLAY\s+STATE\s+ENDPOINTS\s+LAST SEEN$/);
      expect(text).toMatch(new RegExp(`^${id.h1!.slice(0, 12)} \\*\\s+\\S+\\s+${h1.ip.replace(/\./g, '\\.')}\\s+ready\\s+1\\s+now$`, 'm'));
    });

    it('a frozen berthd\'s host is withdrawn on the others after the grace, and back when it thaws', async () => {
      // The controls: each probe succeeds while h2 is registered.
      await eventually(async () => pings(h1, 'l1', ip.l2!), 15_000, 'l1 pings l2');
      expect(await resolves(h1, 'l1', 'l2')).toBe(true);
      expect(await resolves(h3, 'l3', 'l2')).toBe(true);
      expect(await remoteIps(h1)).toContain(ip.l2);
      expect(await remoteIps(h3)).toContain(ip.l2);

      process.kill(h2.pid!, 'SIGSTOP');
      try {
        // Lease (10 s) and grace (3 s): h2's endpoint leaves h1 and h3.
        await eventually(async () => !(await remoteIps(h1)).includes(ip.l2!) && !(await remoteIps(h3)).includes(ip.l2!), 30_000, 'l2 withdrawn');
        const seen = (await nodes(h1)).find((n) => n.id === id.h2)!;
        expect(seen).toMatchObject({ state: 'lapsed', withdrawn: true, endpoints: 1 });
        expect(seen.lastSeen).not.toBeNull();
        expect((await h1.berth('node', 'ls')).stdout).toMatch(new RegExp(`^${id.h2!.slice(0, 12)}\\s+\\S+\\s+${h2.ip.replace(/\./g, '\\.')}\\s+lapsed, withdrawn\\s+1\\s+\\S+ \\(\\d+ s ago\\)$`, 'm'));
        expect(await pings(h1, 'l1', ip.l2!)).toBe(false);
        expect(await resolves(h1, 'l1', 'l2')).toBe(false);
        expect(await resolves(h3, 'l3', 'l2')).toBe(false);
        // The rest of the network is untouched.
        expect(await pings(h1, 'l1', ip.l3!)).toBe(true);
        expect(await resolves(h1, 'l1', 'l3')).toBe(true);
        expect(await remoteIps(h1)).toContain(ip.l3);
      } finally {
        process.kill(h2.pid!, 'SIGCONT');
      }
      // Thawed, h2 registers again (its lease was lost) and its endpoint is back everywhere.
      await eventually(async () => (await remoteIps(h1)).includes(ip.l2!) && (await remoteIps(h3)).includes(ip.l2!), 30_000, 'l2 back');
      await eventually(async () => pings(h1, 'l1', ip.l2!), 15_000, 'l1 pings l2 again');
      await eventually(async () => resolves(h3, 'l3', 'l2'), 15_000, 'l2 resolves on h3 again');
      expect((await nodes(h1)).find((n) => n.id === id.h2)).toMatchObject({ state: 'ready', withdrawn: false });
      await h2.exec('l2', 'ping', '-c', '1', '-W', '2', ip.l1!);
    }, 90_000);

    it('a killed berthd\'s host is withdrawn after the grace, and back when it restarts', async () => {
      // The controls, as before the freeze.
      expect(await pings(h3, 'l3', ip.l2!)).toBe(true);
      expect(await resolves(h3, 'l3', 'l2')).toBe(true);
      expect(await remoteIps(h3)).toContain(ip.l2);
      await h2.kill();
      await eventually(async () => !(await remoteIps(h3)).includes(ip.l2!), 30_000, 'l2 withdrawn from h3');
      expect((await nodes(h3)).find((n) => n.id === id.h2)).toMatchObject({ state: 'lapsed', withdrawn: true });
      expect(await pings(h3, 'l3', ip.l2!)).toBe(false);
      expect(await resolves(h3, 'l3', 'l2')).toBe(false);
      expect(await pings(h3, 'l3', ip.l1!)).toBe(true);
      await h2.start();
      await eventually(async () => (await remoteIps(h3)).includes(ip.l2!) && (await remoteIps(h1)).includes(ip.l2!), 30_000, 'l2 back on h3 and h1');
      await eventually(async () => pings(h3, 'l3', ip.l2!), 15_000, 'l3 pings l2 again');
      expect(await resolves(h3, 'l3', 'l2')).toBe(true);
      expect((await nodes(h3)).find((n) => n.id === id.h2)).toMatchObject({ state: 'ready', withdrawn: false, endpoints: 1 });
    }, 90_000);
  });
}

describe('berth node ls without a cluster store', () => {
  it('is refused, saying how to get one', async () => {
    const topo = testTopology();
    let h: TestHost | undefined;
    try {
      h = await TestHost.create(topo, 'host', ['--datapath', 'iptables']);
      // The control: the same berthd answers other requests.
      expect((await h.berthTry('ps')).code).toBe(0);
      const r = await h.berthTry('node', 'ls');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('this berthd is in no cluster: start it with --store etcd://HOST:PORT');
    } finally {
      await h?.destroy();
      await topo.destroy();
    }
  });
});
