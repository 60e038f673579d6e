/**
 * 100 attaches at once against one berthd (eBPF datapath): 100 concurrent
 * POST /v1/sandboxes, each publishing its own host port to its sandbox's
 * 8080, where the sandbox's own command answers with its name. Every create
 * must succeed with an address of its own, every published port must lead to
 * its own sandbox (one connection each from the outside namespace), and after
 * 100 concurrent removes nothing of them may be left: no sandbox, no
 * namespace, no veth, no datapath entry, and no published port answering.
 * Not a timing test: berthd's Server-Timing is only checked to be there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { parseServerTiming } from '../../src/timing.js';
import type { SandboxView } from '../../src/api/views.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';
import { BerthHost as TestHost, UPLINK } from '../../harness/berthd.js';

const N = 100;
const FRONT = 24000;

let topo: Topology;
let h: TestHost;

/**
 * From the outside namespace: one connection to each port (retried until the
 * sandbox's command listens, at most @waitS seconds in all), printing what
 * each answered ('' when it never did).
 */
const CLIENT = `
import json, socket, sys, time
host, ports, wait = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + wait
out = {}
for port in ports:
    got = ""
    while True:
        s = socket.socket(); s.settimeout(1)
        try:
            s.connect((host, port))
            buf = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            got = buf.decode().strip()
        except Exception:
            pass
        finally:
            s.close()
        if got or time.monotonic() > end:
            break
        time.sleep(0.1)
    out[str(port)] = got
print(json.dumps(out))
`;

async function answers(ports: number[], waitS: number): Promise<Record<string, string>> {
  const { stdout } = await run('nsenter', [`--net=${topo.nsPath('ext')}`, '--', 'python3', '-c', CLIENT, UPLINK.host, JSON.stringify(ports), String(waitS)], { timeoutMs: 120_000 });
  return JSON.parse(stdout) as Record<string, string>;
}

async function hostVeths(): Promise<string[]> {
  const links = JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => /^bv[0-9a-f]{12}$/.test(n));
}

async function sandboxNetns(instance: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`berth-${instance}-`));
}

beforeAll(async () => {
  topo = testTopology();
  h = await TestHost.create(topo, 'host', ['--datapath', 'bpf']);
}, 60_000);

afterAll(async () => {
  await h?.destroy();
  await topo?.destroy();
});

describe(`${N} concurrent attaches, each with a published port`, () => {
  it('all succeed with distinct addresses, each port reaches its own sandbox, and removing them all leaves nothing', async () => {
    const api = h.api;
    const instance = String((await api.call<{ instance: string }>('GET', '/v1/info')).instance);
    const ports = Array.from({ length: N }, (_, i) => FRONT + i);
    // Control: before the sandboxes exist, none of the ports answers (and the probe itself is shown to work below).
    const before = await answers(ports.slice(0, 3), 0);
    expect(Object.values(before)).toEqual(['', '', '']);
    type Dp = { detail: { maps: Record<string, { entries: number }> } };
    const dp0 = await api.call<Dp>('GET', '/v1/datapath');

    const made = await Promise.allSettled(ports.map((port, i) => api.callTimed<SandboxView>('POST', '/v1/sandboxes', {
      name: `att-${i}`, network: 'bridge', publish: [`${port}:8080`],
      cmd: ['socat', 'TCP-LISTEN:8080,reuseaddr,fork', `SYSTEM:echo att-${i}`],
    })));
    const failures = made.flatMap((r, i) => (r.status === 'rejected' ? [`att-${i}: ${(r.reason as Error).message}`] : []));
    expect(failures).toEqual([]);
    const views = made.map((r) => (r as PromiseFulfilledResult<{ value: SandboxView; serverTiming: string }>).value);
    for (const v of views) expect(parseServerTiming(v.serverTiming).total).toBeGreaterThan(0);
    const ips = views.map((v) => Object.values(v.value.NetworkSettings.Networks)[0]?.IPAddress ?? '');
    expect(ips.every((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip))).toBe(true);
    expect(new Set(ips).size).toBe(N);
    expect(new Set(views.map((v) => v.value.NetworkSettings.SandboxKey)).size).toBe(N);

    const got = await answers(ports, 60);
    expect(ports.filter((p, i) => got[String(p)] !== `att-${i}`).map((p) => `${p}: '${got[String(p)]}'`)).toEqual([]);

    const dp = await api.call<Dp>('GET', '/v1/datapath');
    expect(dp.detail.maps.berth_dp_pub!.entries).toBe(N);
    expect(dp.detail.maps.berth_dp_ep_ip!.entries).toBeGreaterThanOrEqual(dp0.detail.maps.berth_dp_ep_ip!.entries + N);
    expect((await hostVeths()).length).toBe(N);
    expect((await sandboxNetns(instance)).length).toBe(N);

    const removed = await Promise.allSettled(views.map((v) => api.call('DELETE', `/v1/sandboxes/${v.value.Id}?force=1`)));
    expect(removed.flatMap((r, i) => (r.status === 'rejected' ? [`att-${i}: ${(r.reason as Error).message}`] : []))).toEqual([]);

    expect(await api.call<unknown[]>('GET', '/v1/sandboxes')).toEqual([]);
    expect(await hostVeths()).toEqual([]);
    expect(await sandboxNetns(instance)).toEqual([]);
    const after = await api.call<Dp>('GET', '/v1/datapath');
    expect(after.detail.maps.berth_dp_pub!.entries).toBe(0);
    // the tables hold what they held before the first create: none of the sandboxes' entries
    for (const m of ['berth_dp_ep_ip', 'berth_dp_links', 'berth_dp_allow']) expect([m, after.detail.maps[m]!.entries]).toEqual([m, dp0.detail.maps[m]!.entries]);
    // every port answered before (the control): now none does
    const gone = await answers(ports, 0);
    expect(ports.filter((p) => gone[String(p)] !== '')).toEqual([]);
  }, 300_000);
});
