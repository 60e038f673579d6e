/**
 * berth as podman's network, through berth-cni: a real podman (Debian's 4.3,
 * CNI backend, harness/podman.ts) and berthd both run in a
 * test-made "host" namespace, once on each datapath; the image is busybox-static imported (nothing
 * is pulled) and everything is driven with real `podman` commands. The
 * containers' namespaces are podman's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tryRun } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { BerthHost, UPLINK } from '../../harness/berthd.js';
import { CniPlugin } from '../../harness/cni.js';
import { Podman } from '../../harness/podman.js';
import { testTopology } from '../helpers/kernel.js';

const IMAGE = 'localhost/berthbox:test';
const GW = '10.94.0.1';

for (const datapath of ['bpf', 'iptables'] as const) describe(`podman with berth-cni on the ${datapath} datapath`, () => {
  let topo: Topology | undefined;
  let h: BerthHost | undefined;
  let plugin: CniPlugin | undefined;
  let pm: Podman | undefined;
  const podman = (...a: string[]) => pm!.podman(...a);
  const cniSandboxes = async () => Object.values((await h!.state()).sandboxes).filter((s) => s.external?.engine === 'cni');
  const hostVeths = async () => (JSON.parse((await run('ip', ['-n', h!.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => /^bv/.test(n));
  const fromExt = (...cmd: string[]) => tryRun('nsenter', [`--net=${topo!.nsPath('ext')}`, '--', ...cmd], { timeoutMs: 15_000 });
  const fromHost = (...cmd: string[]) => tryRun('nsenter', [`--net=${h!.nsPath}`, '--', ...cmd], { timeoutMs: 15_000 });

  beforeAll(async () => {
    topo = testTopology();
    // Not a timing bound: on a loaded machine the bpf datapath's first apply takes seconds.
    h = await BerthHost.create(topo, 'host', ['--datapath', datapath], { timeoutMs: 60_000 });
    plugin = await CniPlugin.create();
    pm = await Podman.create(h.nsPath, plugin.dir);
    // Podman 4.3's libcni speaks CNI up to 1.0.0.
    await pm.addNetwork('web', {
      cniVersion: '1.0.0', name: 'web',
      plugins: [{ type: 'berth', network: 'web', subnet: '10.94.0.0/24', socket: h.socket, capabilities: { portMappings: true, aliases: true } }],
    });
    await pm.importBusybox(IMAGE);
  }, 180_000);

  afterAll(async () => {
    await pm?.destroy();
    await h?.destroy();
    await topo?.destroy();
    await plugin?.destroy();
  }, 120_000);

  it('podman lists the berth network from its conflist', async () => {
    expect((await podman('network', 'ls', '--format', '{{.Name}} {{.Driver}}')).stdout).toMatch(/^web berth$/m);
  });

  describe('containers', () => {
    let ip1 = '';
    beforeAll(async () => {
      // --dns: the embedded DNS only (else podman adds the machine's own nameservers, outside the test's namespaces).
      await podman('run', '-d', '--name', 'web1', '--network', 'web', '--dns', GW, '-p', '8080:80', IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www');
      await podman('run', '-d', '--name', 'cli1', '--network', 'web', '--dns', GW, IMAGE, 'sleep', '3600');
      ip1 = (await podman('inspect', '-f', '{{.NetworkSettings.Networks.web.IPAddress}}', 'web1')).stdout.trim();
    }, 120_000);

    it('each container has berth\'s address, default route and DNS', async () => {
      expect(ip1).toMatch(/^10\.94\.0\.\d+$/);
      const addr = (await podman('exec', 'web1', 'ip', '-4', 'addr', 'show', 'dev', 'eth0')).stdout;
      expect(addr).toContain(`inet ${ip1}/24`);
      expect((await podman('exec', 'web1', 'ip', 'route')).stdout).toMatch(new RegExp(`^default via ${GW.replace(/\./g, '\\.')} dev eth0`, 'm'));
      expect((await podman('exec', 'cli1', 'cat', '/etc/resolv.conf')).stdout).toMatch(new RegExp(`^nameserver ${GW.replace(/\./g, '\\.')}$`, 'm'));
      const sbs = await cniSandboxes();
      expect(sbs.map((s) => s.endpoints[0]!.aliases).flat()).toEqual(expect.arrayContaining(['web1', 'cli1']));
    });

    it('one resolves the other by its container name through berth\'s DNS and reaches it', async () => {
      const ns = await podman('exec', 'cli1', 'nslookup', 'web1', GW);
      expect(ns.stdout).toContain(ip1);
      expect((await podman('exec', 'cli1', 'ping', '-c', '1', '-W', '2', 'web1')).stdout).toMatch(/1 packets received/);
    });

    it('the -p port is reachable from the outside namespace and from the host\'s 127.0.0.1, with no proxy process', async () => {
      const ext = await fromExt('curl', '-sS', '-m', '5', `http://${UPLINK.host}:8080/`);
      expect(ext).toMatchObject({ code: 0, stdout: 'berth-podman\n' });
      const local = await fromHost('curl', '-sS', '-m', '5', 'http://127.0.0.1:8080/');
      expect(local).toMatchObject({ code: 0, stdout: 'berth-podman\n' });
      const procs = (await run('ps', ['-eo', 'comm'])).stdout.split('\n');
      expect(procs.filter((p) => /docker-proxy|rootlessport|slirp4netns|pasta/.test(p))).toEqual([]);
      // The publish is berth's (the datapath's), recorded unheld: podman's conmon holds the host port itself.
      expect((await cniSandboxes()).flatMap((s) => s.publish)).toEqual([{ hostIp: '', hostPort: 8080, count: 1, containerPort: 80, proto: 'tcp', unheld: true }]);
    });

    it('podman rm leaves nothing of the containers in berth: no record, no veth', async () => {
      expect(await hostVeths()).toHaveLength(2);
      await podman('rm', '-f', '-t', '0', 'web1', 'cli1');
      expect(await cniSandboxes()).toEqual([]);
      expect(await hostVeths()).toEqual([]);
      // The port is free again for the next container.
      await podman('run', '-d', '--name', 'web2', '--network', 'web', '--dns', GW, '-p', '8080:80', IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www');
      expect(await fromExt('curl', '-sS', '-m', '5', `http://${UPLINK.host}:8080/`)).toMatchObject({ code: 0, stdout: 'berth-podman\n' });
      await podman('rm', '-f', '-t', '0', 'web2');
      expect(await cniSandboxes()).toEqual([]);
    }, 120_000);
  });

  describe('podman network rm', () => {
    const berthNets = async () => Object.values((await h!.state()).networks).filter((n) => !n.isDefault).map((n) => n.name).sort();
    const bridges = async () => (JSON.parse((await run('ip', ['-n', h!.ns, '-j', 'link', 'show', 'type', 'bridge'])).stdout) as { ifname: string }[]).map((l) => l.ifname);

    const dnsListening = async (gw: string) => (await run('ss', ['-N', h!.ns, '-Hlun', 'src', gw])).stdout.trim() !== '';

    it('podman lists and inspects a berth network as driver berth (its subnet is berth\'s to show: podman reads only its own IPAM plugins)', async () => {
      const info = JSON.parse((await podman('network', 'inspect', 'web')).stdout) as { name: string; driver: string; subnets?: unknown }[];
      expect(info).toHaveLength(1);
      expect(info[0]).toMatchObject({ name: 'web', driver: 'berth' });
      expect(info[0]!.subnets ?? []).toEqual([]);
      // podman's CNI backend makes only its own drivers' conflists: a berth network is a conflist the operator writes.
      const create = await pm!.podmanTry('network', 'create', '-d', 'berth', 'made');
      expect(create.code).not.toBe(0);
      expect(create.stderr).toMatch(/unsupported driver berth/);
    });

    it('refuses to remove a network in use, changing nothing; -f removes its containers and, with the last, berth\'s network, bridge and DNS', async () => {
      await pm!.addNetwork('gone', { cniVersion: '1.0.0', name: 'gone', plugins: [{ type: 'berth', network: 'gone', subnet: '10.95.0.0/24', socket: h!.socket }] });
      await podman('run', '-d', '--name', 'g1', '--network', 'gone', IMAGE, 'sleep', '3600');
      const n = Object.values((await h!.state()).networks).find((x) => x.name === 'gone')!;
      expect(n.madeByCni).toBe(true);
      expect(await bridges()).toContain(n.bridge);
      expect(await dnsListening('10.95.0.1')).toBe(true);
      const busy = await pm!.podmanTry('network', 'rm', 'gone');
      expect(busy.code).not.toBe(0);
      expect(busy.stderr).toMatch(/"gone" has associated containers/);
      expect(await berthNets()).toContain('gone');
      expect((await podman('exec', 'g1', 'ping', '-c', '1', '-W', '2', '10.95.0.1')).stdout).toMatch(/1 packets received/);
      expect((await podman('network', 'rm', '-f', '-t', '0', 'gone')).stdout.trim()).toBe('gone');
      expect((await podman('network', 'ls', '--format', '{{.Name}}')).stdout).not.toMatch(/^gone$/m);
      expect(await cniSandboxes()).toEqual([]);
      expect(await berthNets()).not.toContain('gone');
      expect(await bridges()).not.toContain(n.bridge);
      expect(await dnsListening('10.95.0.1')).toBe(false);
    }, 120_000);

    it('keeps a network the operator made with berth when podman\'s containers and conflist go', async () => {
      await h!.berth('network', 'create', '--subnet', '10.93.0.0/24', 'kept');
      await pm!.addNetwork('kept', { cniVersion: '1.0.0', name: 'kept', plugins: [{ type: 'berth', network: 'kept', subnet: '10.93.0.0/24', socket: h!.socket }] });
      await podman('run', '-d', '--name', 'k1', '--network', 'kept', IMAGE, 'sleep', '3600');
      expect((await cniSandboxes()).map((s) => s.endpoints[0]!.v4)).toEqual([expect.stringMatching(/^10\.93\.0\./)]);
      await podman('network', 'rm', '-f', '-t', '0', 'kept');
      expect(await cniSandboxes()).toEqual([]);
      expect(await berthNets()).toContain('kept');
      await h!.berth('network', 'rm', 'kept');
    }, 120_000);
  });
});
