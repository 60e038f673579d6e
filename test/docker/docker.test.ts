/**
 * berth as Docker's network and IPAM driver, against a real dockerd: berthd
 * (with --docker-plugin) and dockerd both run in a test-made "host"
 * namespace, the image is busybox-static imported (nothing is pulled), and
 * everything is driven with real `docker` commands.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tryRun } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import type { State } from '../../src/store/model.js';
import { testTopology } from '../helpers/kernel.js';
import { BerthHost as TestHost, UPLINK } from '../../harness/berthd.js';
import { Dockerd as TestDockerd } from '../../harness/dockerd.js';
import { uninstallPluginSpec } from '../../src/docker/install.js';

const PLUGIN = `berth-t${process.pid}`;
const IMAGE = 'berthbox:test';
let topo: Topology | undefined;
let h: TestHost | undefined;
let d: TestDockerd | undefined;
let pluginDir = '';

/** One plugin protocol call, as dockerd makes it. */
function call(path: string, body: unknown = {}): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(pluginDir, 'plugin.sock'), path, method: 'POST', headers: { 'content-type': 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const docker = (...a: string[]) => d!.docker(...a);
const dockerTry = (...a: string[]) => d!.dockerTry(...a);
const inspectIp = async (c: string, net: string) => (await docker('inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c)).stdout.trim();
const state = async (): Promise<State> => h!.state();
const hostLinks = async () => (JSON.parse((await run('ip', ['-n', h!.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
const fromExt = (...cmd: string[]) => tryRun('nsenter', [`--net=${topo!.nsPath('ext')}`, '--', ...cmd], { timeoutMs: 15_000 });

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  topo = testTopology();
  pluginDir = await mkdtemp(join(tmpdir(), 'berth-plugin-'));
  const sock = join(pluginDir, 'plugin.sock');
  h = await TestHost.create(topo, 'host', ['--docker-plugin', sock]);
  await h.berth('docker-plugin', 'install', '--name', PLUGIN, '--plugin-socket', sock);
  expect(readFileSync(`/etc/docker/plugins/${PLUGIN}.spec`, 'utf8')).toBe(`unix://${sock}\n`);
  d = await TestDockerd.create(h.nsPath, ['--live-restore']);
  await d.importBusybox(IMAGE);

}, 120_000);

afterAll(async () => {
  if (process.env.BERTH_DOCKER_TRACE && h) await writeFile(process.env.BERTH_DOCKER_TRACE, h.logs);
  if (d) {
    await d.dockerTry('rm', '-f', 'c1', 'c2', 'web', 'i1', 'x1', 'x2', 'v1', 'v2', 'web2').catch(() => undefined);
    await d.destroy();
  }
  await uninstallPluginSpec(PLUGIN).catch(() => undefined);
  await h?.destroy();
  await topo?.destroy();
  if (pluginDir) await rm(pluginDir, { recursive: true, force: true });
}, 120_000);

describe('the plugin protocol', () => {
  it('activates as NetworkDriver and IpamDriver, with Docker\'s content type', async () => {
    const r = await call('/Plugin.Activate');
    expect(r).toMatchObject({ status: 200, type: 'application/vnd.docker.plugins.v1.2+json', body: { Implements: ['NetworkDriver', 'IpamDriver'] } });
    expect((await call('/NetworkDriver.GetCapabilities')).body).toEqual({ Scope: 'local', ConnectivityScope: 'local' });
    expect((await call('/IpamDriver.GetCapabilities')).body).toEqual({ RequiresMACAddress: false, RequiresRequestReplay: false });
    expect((await call('/IpamDriver.GetDefaultAddressSpaces')).body).toEqual({ LocalDefaultAddressSpace: 'berth-local', GlobalDefaultAddressSpace: 'berth-global' });
  });

  it('answers every call idempotently, as Docker re-sends them, and refuses with Err', async () => {
    const nid = 'a'.repeat(64);
    const eid = 'b'.repeat(64);
    const pool = await call('/IpamDriver.RequestPool', { AddressSpace: 'berth-local', Pool: '10.79.0.0/24', SubPool: '', Options: {}, V6: false });
    expect(pool.body).toMatchObject({ Pool: '10.79.0.0/24' });
    const PoolID = pool.body.PoolID as string;
    const again = await call('/IpamDriver.RequestPool', { AddressSpace: 'berth-local', Pool: '10.79.0.0/25', V6: false });
    expect(again.status).not.toBe(200);
    expect(again.body.Err).toMatch(/overlaps pool 10\.79\.0\.0\/24/);
    expect((await call('/IpamDriver.RequestAddress', { PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } })).body).toEqual({ Address: '10.79.0.1/24', Data: {} });
    expect((await call('/IpamDriver.RequestAddress', { PoolID, Address: '', Options: {} })).body).toEqual({ Address: '10.79.0.2/24', Data: {} });
    const bad = await call('/NetworkDriver.CreateNetwork', { NetworkID: nid, Options: { 'com.docker.network.generic': { colour: 'blue' } }, IPv4Data: [{ AddressSpace: 'berth-local', Pool: '10.79.0.0/24', Gateway: '10.79.0.1/24' }] });
    expect(bad.body.Err).toMatch(/unknown option 'colour'/);
    const net = { NetworkID: nid, Options: { 'com.docker.network.generic': {}, 'com.docker.network.enable_ipv6': false }, IPv4Data: [{ AddressSpace: 'berth-local', Pool: '10.79.0.0/24', Gateway: '10.79.0.1/24', AuxAddresses: {} }], IPv6Data: [] };
    expect((await call('/NetworkDriver.CreateNetwork', net)).body).toEqual({});
    expect((await call('/NetworkDriver.CreateNetwork', net)).body).toEqual({});
    expect(Object.values((await state()).networks).filter((n) => n.external?.id === nid)).toHaveLength(1);
    const ep = { NetworkID: nid, EndpointID: eid, Interface: { Address: '10.79.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} };
    expect((await call('/NetworkDriver.CreateEndpoint', ep)).body).toEqual({});
    expect((await call('/NetworkDriver.CreateEndpoint', ep)).body).toEqual({});
    const join1 = await call('/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    const join2 = await call('/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: '/var/run/docker/netns/x', Options: {} });
    expect(join1.body).toEqual({ InterfaceName: { SrcName: `bd${eid.slice(0, 12)}`, DstPrefix: 'eth' }, Gateway: '10.79.0.1' });
    expect(join2.body).toEqual(join1.body);
    expect(await hostLinks()).toEqual(expect.arrayContaining([`bv${eid.slice(0, 12)}`, `bd${eid.slice(0, 12)}`]));
    expect((await call('/NetworkDriver.EndpointOperInfo', { NetworkID: nid, EndpointID: eid })).body.Value).toMatchObject({ ipv4: '10.79.0.2' });
    const pm = { NetworkID: nid, EndpointID: eid, Options: { 'com.docker.network.portmap': [{ Proto: 17, IP: '', Port: 53, HostIP: '', HostPort: 5353, HostPortEnd: 5353 }] } };
    expect((await call('/NetworkDriver.ProgramExternalConnectivity', pm)).body).toEqual({});
    expect((await call('/NetworkDriver.ProgramExternalConnectivity', pm)).body).toEqual({});
    expect((await state()).sandboxes[eid]!.publish).toEqual([{ hostIp: '', hostPort: 5353, count: 1, containerPort: 53, proto: 'udp' }]);
    for (let i = 0; i < 2; i++) {
      expect((await call('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: nid, EndpointID: eid })).body).toEqual({});
      expect((await call('/NetworkDriver.Leave', { NetworkID: nid, EndpointID: eid })).body).toEqual({});
    }
    const busy = await call('/NetworkDriver.DeleteNetwork', { NetworkID: nid });
    expect(busy.body.Err).toMatch(/has active endpoints/);
    for (let i = 0; i < 2; i++) {
      expect((await call('/NetworkDriver.DeleteEndpoint', { NetworkID: nid, EndpointID: eid })).body).toEqual({});
      expect((await call('/NetworkDriver.DeleteNetwork', { NetworkID: nid })).body).toEqual({});
      expect((await call('/IpamDriver.ReleaseAddress', { PoolID, Address: '10.79.0.2' })).body).toEqual({});
      expect((await call('/IpamDriver.ReleasePool', { PoolID })).body).toEqual({});
    }
    const unknown = await call('/NetworkDriver.Join', { NetworkID: nid, EndpointID: eid, SandboxKey: 'x' });
    expect(unknown.body.Err).toMatch(/endpoint '.*' is not known to berth/);
    expect((await call('/NetworkDriver.Frobnicate')).body.Err).toMatch(/no such plugin call/);
    const st = await state();
    expect(st.sandboxes[eid]).toBeUndefined();
    expect(Object.values(st.networks).filter((n) => n.external)).toEqual([]);
    expect(st.ipamPools ?? {}).toEqual({});
    expect((await hostLinks()).filter((l) => /^(bv|bd)/.test(l))).toEqual([]);
  });
});

describe('berth as a Docker network and IPAM driver', () => {
  it('creates a Docker network as a berth network with berth\'s IPAM', async () => {
    const id = (await docker('network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.70.0.0/24', 'net1')).stdout.trim();
    const st = await state();
    const n = Object.values(st.networks).find((x) => x.external?.id === id);
    expect(n).toMatchObject({ name: `docker-${id.slice(0, 12)}`, driver: 'bridge', internal: false });
    expect(n!.pools.map((p) => [p.subnet, p.gateway])).toEqual([['10.70.0.0/24', '10.70.0.1']]);
    expect(Object.values(st.ipamPools ?? {}).map((p) => p.subnet)).toEqual(['10.70.0.0/24']);
    expect(await hostLinks()).toContain(n!.bridge);
    // berth's refusals reach the docker user as the plugin's Err.
    const overlap = await dockerTry('network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.70.0.0/25', 'clash');
    expect(overlap.code).not.toBe(0);
    expect(overlap.stderr).toMatch(/IpamDriver\.RequestPool: berth: subnet 10\.70\.0\.0\/25 overlaps 10\.70\.0\.0\/24 of network 'docker-[0-9a-f]{12}'/);
    const badOpt = await dockerTry('network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.74.0.0/24', '-o', 'com.docker.network.driver.mtu=12', 'badmtu');
    expect(badOpt.code).not.toBe(0);
    expect(badOpt.stderr).toMatch(/berth: option com\.docker\.network\.driver\.mtu=12 is invalid/);
    expect(Object.values((await state()).networks).filter((x) => x.external)).toHaveLength(1);
    expect(Object.values((await state()).ipamPools ?? {}).map((p) => p.subnet)).toEqual(['10.70.0.0/24']);
    // berth's own CLI leaves Docker's network to Docker.
    const rm1 = await h!.berthTry('network', 'rm', n!.name);
    expect(rm1.code).not.toBe(0);
    expect(rm1.stderr).toMatch(/belongs to docker/);
    const join = await h!.berthTry('run', '-d', '--name', 'intruder', '--network', n!.name, '--', 'sleep', '60');
    expect(join.code).not.toBe(0);
    expect(join.stderr).toMatch(/belongs to docker: berth's sandboxes cannot join it/);
    await h!.berth('network', 'prune');
    expect((await state()).networks[n!.id]).toBeDefined();
    const subnet = (await docker('network', 'inspect', '-f', '{{.Driver}} {{.IPAM.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}', 'net1')).stdout.trim();
    expect(subnet).toBe(`${PLUGIN} ${PLUGIN} 10.70.0.0/24`);
  });

  it('gives two containers berth-allocated addresses; they ping each other by name', async () => {
    await docker('run', '-d', '--name', 'c1', '--network', 'net1', IMAGE, 'sleep', '100000');
    await docker('run', '-d', '--name', 'c2', '--network', 'net1', IMAGE, 'sleep', '100000');
    const ip1 = await inspectIp('c1', 'net1');
    const ip2 = await inspectIp('c2', 'net1');
    expect([ip1, ip2]).toEqual(['10.70.0.2', '10.70.0.3']);
    const st = await state();
    const ext = Object.values(st.sandboxes).filter((s) => s.mode === 'external');
    expect(ext.flatMap((s) => s.endpoints.map((e) => e.v4)).sort()).toEqual(['10.70.0.2', '10.70.0.3']);
    expect(Object.values(st.ipamPools!)[0]!.allocated.sort()).toEqual(['10.70.0.2', '10.70.0.3']);
    const addr = (await docker('exec', 'c1', 'ip', '-o', '-4', 'addr', 'show', 'eth0')).stdout;
    expect(addr).toContain('10.70.0.2/24');
    expect((await docker('exec', 'c1', 'ip', 'route')).stdout).toMatch(/default via 10\.70\.0\.1 dev eth0/);
    expect((await docker('inspect', '-f', '{{(index .NetworkSettings.Networks "net1").Gateway}}', 'c1')).stdout.trim()).toBe('10.70.0.1');
    // Docker's embedded DNS answers in the container, as on its own bridge networks.
    expect((await docker('exec', 'c1', 'cat', '/etc/resolv.conf')).stdout).toMatch(/^nameserver 127\.0\.0\.11$/m);
    await docker('exec', 'c1', 'ping', '-c', '2', '-W', '2', ip2);
    const byName = await docker('exec', 'c1', 'ping', '-c', '2', '-W', '2', 'c2');
    expect(byName.stdout).toContain(`(${ip2})`);
    // berth's CLI shows Docker's endpoints as external (in ps -a, not ps), and refuses to remove them.
    const all = JSON.parse((await h!.berth('ps', '-a', '--format', 'json')).stdout) as { Name: string; State: { Status: string } }[];
    expect(all.filter((x) => x.State.Status === 'external').map((x) => x.Name).sort()).toEqual(ext.map((x) => x.name).sort());
    expect((await h!.berth('ps')).stdout).not.toContain('docker-');
    const r = await h!.berthTry('rm', '-f', ext[0]!.name);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/belongs to docker/);
  }, 60_000);

  it('serves -p through berth\'s datapath from the outside, with no docker-proxy', async () => {
    await docker('run', '-d', '--name', 'web', '--network', 'net1', '-p', '8080:80', IMAGE, 'sh', '-c', 'while true; do echo hi | nc -l -p 80; done');
    const st = await state();
    const sb = Object.values(st.sandboxes).find((s) => s.publish.length);
    expect(sb?.publish).toEqual([{ hostIp: '', hostPort: 8080, count: 1, containerPort: 80, proto: 'tcp' }]);
    // Docker cannot show a remote driver's port mappings (moby/libnetwork#2451): berth's CLI does.
    expect((await h!.berth('port', sb!.name)).stdout).toMatch(/80\/tcp -> .*8080/);
    const r = await eventually(() => fromExt('busybox', 'nc', '-w', '2', UPLINK.host, '8080'), (x) => x.stdout.includes('hi'));
    expect(r.stdout).toContain('hi');
    // From the host itself, through its loopback, as Docker's own bridge serves it.
    const local = await eventually(() => tryRun('nsenter', [`--net=${h!.nsPath}`, '--', 'busybox', 'nc', '-w', '2', '127.0.0.1', '8080'], { timeoutMs: 15_000 }), (x) => x.stdout.includes('hi'));
    expect(local.stdout).toContain('hi');
    // No docker-proxy of this dockerd's (other dockerds on the machine, a benchmark's, may run theirs).
    const dockerdPid = (await readFile(d!.pidfile, 'utf8')).trim();
    expect(dockerdPid).toMatch(/^\d+$/);
    expect((await tryRun('pgrep', ['-x', '-P', dockerdPid, 'docker-proxy'])).code).toBe(1);
    // A host port taken is refused with berth's reason, and nothing of the refused container stays published.
    const taken = await dockerTry('run', '-d', '--name', 'web2', '--network', 'net1', '-p', '8080:80', IMAGE, 'sleep', '100000');
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toMatch(/berth: host port 8080\/tcp is already published by 'docker-[0-9a-f]{12}'/);
    await docker('rm', '-f', 'web2');
    const st2 = await state();
    expect(Object.values(st2.sandboxes).filter((s) => s.mode === 'external')).toHaveLength(3);
  }, 60_000);

  it('takes --gateway, --ip-range, --ip, -P and icc=false from Docker', async () => {
    await docker('network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.72.0.0/24', '--gateway', '10.72.0.254', '--ip-range', '10.72.0.128/25',
      '-o', 'com.docker.network.bridge.enable_icc=false', 'net3');
    const n = Object.values((await state()).networks).find((x) => x.pools[0]?.subnet === '10.72.0.0/24')!;
    expect(n.pools[0]!.gateway).toBe('10.72.0.254');
    expect(n.options).toEqual({ icc: 'false' });
    await docker('run', '-d', '--name', 'x1', '--network', 'net3', '-P', '--expose', '81', IMAGE, 'sleep', '100000');
    await docker('run', '-d', '--name', 'x2', '--network', 'net3', '--ip', '10.72.0.10', IMAGE, 'sleep', '100000');
    expect(await inspectIp('x1', 'net3')).toBe('10.72.0.128');
    expect(await inspectIp('x2', 'net3')).toBe('10.72.0.10');
    expect((await docker('exec', 'x1', 'ip', 'route')).stdout).toMatch(/default via 10\.72\.0\.254 dev eth0/);
    const x1 = Object.values((await state()).sandboxes).find((s) => s.endpoints[0]?.v4 === '10.72.0.128')!;
    expect(x1.expose).toEqual([{ port: 81, proto: 'tcp' }]);
    expect(x1.publish).toHaveLength(1);
    expect(x1.publish[0]).toMatchObject({ containerPort: 81, proto: 'tcp', count: 1 });
    expect(x1.publish[0]!.hostPort).toBeGreaterThanOrEqual(32768);
    // icc=false: the containers do not reach each other; each still reaches the gateway.
    expect((await dockerTry('exec', 'x1', 'ping', '-c', '1', '-W', '1', '10.72.0.10')).code).not.toBe(0);
    await docker('exec', 'x1', 'ping', '-c', '1', '-W', '2', '10.72.0.254');
    await docker('rm', '-f', 'x1', 'x2');
    await docker('network', 'rm', 'net3');
  }, 60_000);

  it('gives containers IPv6 addresses from berth\'s IPAM with --ipv6', async () => {
    await docker('network', 'create', '--ipv6', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.73.0.0/24', '--subnet', 'fd00:73::/64', 'net6');
    const n = Object.values((await state()).networks).find((x) => x.pools[0]?.subnet === '10.73.0.0/24')!;
    expect(n.ipv6).toBe(true);
    expect(n.pools.map((p) => [p.subnet, p.gateway])).toEqual([['10.73.0.0/24', '10.73.0.1'], ['fd00:73::/64', 'fd00:73::1']]);
    await docker('run', '-d', '--name', 'v1', '--network', 'net6', IMAGE, 'sleep', '100000');
    await docker('run', '-d', '--name', 'v2', '--network', 'net6', IMAGE, 'sleep', '100000');
    const v6 = async (c: string) => (await docker('inspect', '-f', '{{(index .NetworkSettings.Networks "net6").GlobalIPv6Address}}', c)).stdout.trim();
    expect([await v6('v1'), await v6('v2')]).toEqual(['fd00:73::2', 'fd00:73::3']);
    expect((await docker('exec', 'v1', 'ip', '-6', 'route')).stdout).toMatch(/default via fd00:73::1 dev eth0/);
    await eventually(() => dockerTry('exec', 'v1', 'ping', '-6', '-c', '1', '-W', '1', 'fd00:73::3'), (r) => r.code === 0);
    await docker('exec', 'v1', 'ping', '-6', '-c', '2', '-W', '2', 'fd00:73::3');
    await docker('rm', '-f', 'v1', 'v2', 'web2');
    await docker('network', 'rm', 'net6');
  }, 60_000);

  it('keeps an --internal network from the outside world', async () => {
    await docker('network', 'create', '--internal', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.71.0.0/24', 'inet');
    const st = await state();
    expect(Object.values(st.networks).find((n) => n.pools[0]?.subnet === '10.71.0.0/24')?.internal).toBe(true);
    await docker('run', '-d', '--name', 'i1', '--network', 'inet', IMAGE, 'sleep', '100000');
    expect((await docker('exec', 'i1', 'ip', 'route')).stdout).not.toMatch(/default/);
    const out = await dockerTry('exec', 'i1', 'ping', '-c', '1', '-W', '1', UPLINK.ext);
    expect(out.code).not.toBe(0);
    // Not through the gateway either (no default route, and the datapath drops it).
    const viaGw = await dockerTry('exec', 'i1', 'sh', '-c', `ip route add default via 10.71.0.1 && ping -c 1 -W 1 ${UPLINK.ext}`);
    expect(viaGw.code).not.toBe(0);
  }, 60_000);

  it('follows docker restart, network connect and disconnect', async () => {
    await docker('restart', '-t', '1', 'c2');
    // berth's allocator hands out a released address last, so c2 comes back with a new one; its name follows.
    const ip2 = await inspectIp('c2', 'net1');
    expect(ip2).toMatch(/^10\.70\.0\.\d+$/);
    expect(Object.values((await state()).ipamPools!).find((p) => p.subnet === '10.70.0.0/24')!.allocated).toContain(ip2);
    expect((await docker('exec', 'c1', 'ping', '-c', '1', '-W', '2', 'c2')).stdout).toContain(`(${ip2})`);
    await docker('network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', '10.75.0.0/24', 'net5');
    await docker('network', 'connect', 'net5', 'c1');
    expect(await inspectIp('c1', 'net5')).toBe('10.75.0.2');
    expect((await docker('exec', 'c1', 'ip', '-o', '-4', 'addr')).stdout).toContain('10.75.0.2/24');
    await docker('exec', 'c1', 'ping', '-c', '1', '-W', '2', '10.75.0.1');
    await docker('network', 'disconnect', 'net5', 'c1');
    expect((await docker('exec', 'c1', 'ip', '-o', '-4', 'addr')).stdout).not.toContain('10.75.0.2');
    await docker('network', 'rm', 'net5');
    const st = await state();
    // c1, c2, web and i1: one endpoint each.
    expect(Object.values(st.sandboxes).filter((s) => s.mode === 'external')).toHaveLength(4);
    expect(Object.values(st.networks).filter((n) => n.external).map((n) => n.pools[0]!.subnet).sort()).toEqual(['10.70.0.0/24', '10.71.0.0/24']);
  }, 60_000);

  it('keeps containers connected across a dockerd restart (--live-restore)', async () => {
    await d!.stop();
    await d!.start();
    expect((await docker('inspect', '-f', '{{.State.Running}}', 'c1')).stdout.trim()).toBe('true');
    await docker('exec', 'c1', 'ping', '-c', '2', '-W', '2', 'c2');
    const r = await eventually(() => fromExt('busybox', 'nc', '-w', '2', UPLINK.host, '8080'), (x) => x.stdout.includes('hi'));
    expect(r.stdout).toContain('hi');
    // And berthd restarting (reconcile) leaves Docker's endpoints alone.
    await h!.kill('SIGTERM');
    await h!.start(['--docker-plugin', join(pluginDir, 'plugin.sock')]);
    await docker('exec', 'c1', 'ping', '-c', '2', '-W', '2', 'c2');
    const r2 = await eventually(() => fromExt('busybox', 'nc', '-w', '2', UPLINK.host, '8080'), (x) => x.stdout.includes('hi'));
    expect(r2.stdout).toContain('hi');
  }, 90_000);

  it('leaves nothing of berth behind after container and network removal', async () => {
    await docker('rm', '-f', 'c1', 'c2', 'web', 'i1');
    await docker('network', 'rm', 'net1', 'inet');
    const st = await state();
    expect(Object.values(st.networks).filter((n) => n.external)).toEqual([]);
    expect(Object.values(st.sandboxes).filter((s) => s.mode === 'external')).toEqual([]);
    expect(Object.keys(st.ipamPools ?? {})).toEqual([]);
    expect((await hostLinks()).filter((l) => /^(bb-|bv|bd)/.test(l))).toEqual([]);
    // And the plugin spec goes with one command.
    expect((await h!.berth('docker-plugin', 'uninstall', '--name', PLUGIN)).stdout).toMatch(/removed the .* plugin spec/);
    expect(existsSync(`/etc/docker/plugins/${PLUGIN}.spec`)).toBe(false);
  }, 60_000);
});
