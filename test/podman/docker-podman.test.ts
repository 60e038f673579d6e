/**
 * A Docker container and a podman container on one berth network: berthd
 * serves Docker's remote driver and berth-cni's routes in a test-made "host"
 * namespace, with a dockerd (harness/dockerd.ts) and a podman (CNI backend,
 * harness/podman.ts) of the test's own in it, once on each datapath. The
 * operator shares the network by naming it: `-o berth.network=shared` on
 * the Docker network, `"network": "shared"` in the conflist. Docker's
 * protocol does not tell a driver the container's name, so the Docker
 * container gives berth its DNS name as a driver option (berth.aliases).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { BerthHost } from '../../harness/berthd.js';
import { CniPlugin } from '../../harness/cni.js';
import { Dockerd } from '../../harness/dockerd.js';
import { Podman } from '../../harness/podman.js';
import { uninstallPluginSpec } from '../../src/docker/install.js';
import { testTopology } from '../helpers/kernel.js';

const IMAGE = 'localhost/berthbox:test';
const SUBNET = '10.96.0.0/24';
const GW = '10.96.0.1';

for (const datapath of ['bpf', 'iptables'] as const) describe(`a Docker and a podman container on one berth network (${datapath} datapath)`, () => {
  const PLUGIN = `berth-dp${process.pid}-${datapath}`;
  let topo: Topology | undefined;
  let h: BerthHost | undefined;
  let d: Dockerd | undefined;
  let plugin: CniPlugin | undefined;
  let pm: Podman | undefined;
  let pluginDir = '';
  const docker = (...a: string[]) => d!.docker(...a);
  const podman = (...a: string[]) => pm!.podman(...a);
  const state = () => h!.state();
  const hostLinks = async () => (JSON.parse((await run('ip', ['-n', h!.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);

  beforeAll(async () => {
    topo = testTopology();
    pluginDir = await mkdtemp(join(tmpdir(), 'berth-plugin-'));
    const sock = join(pluginDir, 'plugin.sock');
    h = await BerthHost.create(topo, 'host', ['--datapath', datapath, '--docker-plugin', sock], { timeoutMs: 60_000 });
    await h.berth('docker-plugin', 'install', '--name', PLUGIN, '--plugin-socket', sock);
    d = await Dockerd.create(h.nsPath, [], { timeoutMs: 60_000 });
    await d.importBusybox(IMAGE);
    plugin = await CniPlugin.create();
    pm = await Podman.create(h.nsPath, plugin.dir);
    await pm.importBusybox(IMAGE);
    await docker('network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--subnet', SUBNET, '-o', 'berth.network=shared', 'shared');
    // Podman 4.3's libcni speaks CNI up to 1.0.0.
    await pm.addNetwork('shared', {
      cniVersion: '1.0.0', name: 'shared',
      plugins: [{ type: 'berth', network: 'shared', subnet: SUBNET, socket: h.socket, capabilities: { portMappings: true, aliases: true } }],
    });
  }, 240_000);

  afterAll(async () => {
    await pm?.destroy();
    if (d) {
      await d.dockerTry('rm', '-f', 'd1', 'd2').catch(() => undefined);
      await d.dockerTry('network', 'rm', 'shared', 'dipam').catch(() => undefined);
      await d.destroy();
    }
    await uninstallPluginSpec(PLUGIN).catch(() => undefined);
    await h?.destroy();
    await topo?.destroy();
    await plugin?.destroy();
    if (pluginDir) await rm(pluginDir, { recursive: true, force: true });
  }, 120_000);

  let dIp = '';
  let pIp = '';
  it('both engines attach to the one berth network, with addresses from one allocator', async () => {
    // --dns: berth's DNS at the gateway (Docker's embedded DNS forwards what it does not know there).
    await docker('run', '-d', '--name', 'd1', '--network', 'name=shared,driver-opt=berth.aliases=d1', '--dns', GW, IMAGE, 'sh', '-c', 'while true; do echo from-docker | nc -l -p 81; done');
    await podman('run', '-d', '--name', 'p1', '--network', 'shared', '--dns', GW, IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www');
    dIp = (await docker('inspect', '-f', '{{(index .NetworkSettings.Networks "shared").IPAddress}}', 'd1')).stdout.trim();
    pIp = (await podman('inspect', '-f', '{{.NetworkSettings.Networks.shared.IPAddress}}', 'p1')).stdout.trim();
    expect(dIp).toMatch(/^10\.96\.0\.\d+$/);
    expect(pIp).toMatch(/^10\.96\.0\.\d+$/);
    expect(pIp).not.toBe(dIp);
    const st = await state();
    const nets = Object.values(st.networks).filter((n) => n.name === 'shared');
    expect(nets).toHaveLength(1);
    expect(nets[0]!.external?.engine).toBe('docker');
    // Docker's IPAM pool (berth's) holds both addresses, so neither engine can hand out the other's.
    expect(Object.values(st.ipamPools ?? {}).find((p) => p.subnet === SUBNET)!.allocated.sort()).toEqual([dIp, pIp].sort());
    const members = Object.values(st.sandboxes).filter((s) => s.endpoints.some((e) => e.network === nets[0]!.id));
    expect(members.map((s) => s.external?.engine).sort()).toEqual(['cni', 'docker']);
    // One bridge: both host-side veths are on the network's.
    const br = nets[0]!.bridge!;
    const masters = JSON.parse((await run('ip', ['-n', h!.ns, '-j', 'link', 'show', 'master', br])).stdout) as { ifname: string }[];
    expect(masters.map((l) => l.ifname).sort()).toEqual(members.map((s) => s.endpoints[0]!.hostIf!).sort());
  }, 180_000);

  it('they reach each other by address', async () => {
    expect((await podman('exec', 'p1', 'ping', '-c', '1', '-W', '2', dIp)).stdout).toMatch(/1 packets received/);
    expect((await docker('exec', 'd1', 'ping', '-c', '1', '-W', '2', pIp)).stdout).toMatch(/1 packets received/);
    const http = await docker('exec', 'd1', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${pIp} 80`);
    expect(http.stdout).toContain('berth-podman');
    expect((await podman('exec', 'p1', 'nc', '-w', '3', dIp, '81')).stdout).toContain('from-docker');
  }, 60_000);

  it('they reach each other by name: podman through berth\'s DNS, Docker through its embedded DNS forwarding to berth\'s', async () => {
    expect((await podman('exec', 'p1', 'nslookup', 'd1', GW)).stdout).toContain(dIp);
    expect((await podman('exec', 'p1', 'ping', '-c', '1', '-W', '2', 'd1')).stdout).toContain(`(${dIp})`);
    expect((await docker('exec', 'd1', 'cat', '/etc/resolv.conf')).stdout).toMatch(/^nameserver 127\.0\.0\.11$/m);
    expect((await docker('exec', 'd1', 'ping', '-c', '1', '-W', '2', 'p1')).stdout).toContain(`(${pIp})`);
    // A name nobody has is not found (after the two above showed the same lookups answer).
    const none = await pm!.podmanTry('exec', 'p1', 'nslookup', 'nosuch', GW);
    expect(none.code).not.toBe(0);
    expect(none.stdout).not.toMatch(/Name:\s+nosuch/);
  }, 60_000);

  it('Docker removing the network leaves it to the podman container on it, until that goes; then nothing of berth\'s is left', async () => {
    await docker('rm', '-f', 'd1');
    const id = Object.values((await state()).networks).find((n) => n.name === 'shared')!.id;
    // Docker removes its network even when a driver refuses: berth hands it to the CNI attachment left on it.
    await docker('network', 'rm', 'shared');
    expect((await docker('network', 'ls', '--format', '{{.Name}}')).stdout).not.toMatch(/^shared$/m);
    const left = (await state()).networks[id];
    expect(left).toMatchObject({ name: 'shared', madeByCni: true });
    expect(left?.external).toBeUndefined();
    expect((await podman('exec', 'p1', 'ping', '-c', '1', '-W', '2', GW)).stdout).toMatch(/1 packets received/);
    await podman('rm', '-f', '-t', '0', 'p1');
    const st = await state();
    expect(Object.values(st.networks).filter((n) => n.name === 'shared')).toEqual([]);
    expect(Object.values(st.sandboxes).filter((s) => s.mode === 'external')).toEqual([]);
    expect(Object.keys(st.ipamPools ?? {})).toEqual([]);
    expect((await hostLinks()).filter((l) => /^(bb-|bv|bd)/.test(l))).toEqual([]);
  }, 120_000);

  it('refuses a podman container on a Docker network with Docker\'s own IPAM, naming why, and leaves nothing', async () => {
    await docker('network', 'create', '-d', PLUGIN, '--subnet', '10.97.0.0/24', '-o', 'berth.network=dipam', 'dipam');
    await pm!.addNetwork('dipam', { cniVersion: '1.0.0', name: 'dipam', plugins: [{ type: 'berth', network: 'dipam', socket: h!.socket }] });
    const before = Object.keys((await state()).sandboxes).sort();
    const r = await pm!.podmanTry('run', '-d', '--name', 'p2', '--network', 'dipam', IMAGE, 'sleep', '60');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/network 'dipam' is Docker's with Docker's own IPAM for 10\.97\.0\.0\/24: create it with --ipam-driver berth/);
    expect(Object.keys((await state()).sandboxes).sort()).toEqual(before);
    await pm!.podmanTry('rm', '-f', 'p2');
    await docker('network', 'rm', 'dipam');
    expect(existsSync(join(pm!.netDir, 'dipam.conflist'))).toBe(true);
  }, 120_000);
});
