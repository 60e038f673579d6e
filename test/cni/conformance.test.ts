/**
 * berth-cni driven as libcni drives a plugin (harness/cni.ts: CNI_* variables,
 * the configuration on stdin, JSON on stdout) against a real berthd in a
 * test-made host namespace, on each datapath. The "runtime's" container
 * namespaces are made by the test, as a runtime makes them. Every verb in
 * every version; the kernel after ADD (address, default route, the gateway
 * and another container reachable, a name resolved by berth's DNS, the
 * published port reachable from outside); CHECK, DEL (twice), GC; bad
 * inputs refused with the spec's code and a message naming the bad value,
 * with nothing of them left; STATUS and ADD while berthd is down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tryRun } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { BerthHost, UPLINK } from '../../harness/berthd.js';
import { CniPlugin, type CniCall, type CniReply } from '../../harness/cni.js';
import { testTopology } from '../helpers/kernel.js';
import { Agent } from '../helpers/conformance.js';

const VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
const SUBNET = '10.94.0.0/24';
const GW = '10.94.0.1';

for (const datapath of ['bpf', 'iptables'] as const) {
  describe(`berth-cni on the ${datapath} datapath`, () => {
    let topo: Topology | undefined;
    let h: BerthHost | undefined;
    let plugin: CniPlugin | undefined;
    const agents: Agent[] = [];
    let seq = 0;
    /** web1's ADD result and namespace: it stays attached to the end (the restart checks it) */
    let web1: { res: Record<string, unknown>; netns: string } | undefined;

    const conf = (version: string, extra: Record<string, unknown> = {}) => ({
      cniVersion: version, name: 'web', type: 'berth', network: 'web', subnet: SUBNET, socket: h!.socket, ...extra,
    });
    const cni = (call: CniCall, stdin: unknown): Promise<CniReply> => plugin!.invoke(call, stdin);
    const ns = async (short: string) => {
      await topo!.addNetns(short);
      return topo!.nsPath(short);
    };
    const addrs = async (short: string, dev = 'eth0') =>
      (JSON.parse((await run('ip', ['-n', topo!.ns(short), '-j', 'addr', 'show', 'dev', dev])).stdout) as { addr_info: { local: string; prefixlen: number; family: string }[] }[])[0]!.addr_info
        .filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    const defaultVia = async (short: string) =>
      (JSON.parse((await run('ip', ['-n', topo!.ns(short), '-j', 'route', 'show', 'default'])).stdout) as { gateway?: string; dev: string }[])[0];
    const links = async (short: string) => (JSON.parse((await run('ip', ['-n', topo!.ns(short), '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
    /** What a refused request must leave as it was: berthd's records and the host namespace's links. */
    const world = async (...containers: string[]) => ({
      sandboxes: Object.values((await h!.state()).sandboxes).map((s) => s.name).sort(),
      networks: Object.values((await h!.state()).networks).map((n) => n.name).sort(),
      hostLinks: await links('host'),
      containers: await Promise.all(containers.map((c) => links(c))),
    });

    beforeAll(async () => {
      topo = testTopology();
      // Not a timing bound: on a loaded machine the bpf datapath's first apply takes seconds.
      h = await BerthHost.create(topo, 'host', ['--datapath', datapath], { timeoutMs: 60_000 });
      plugin = await CniPlugin.create();
    }, 90_000);

    afterAll(async () => {
      for (const a of agents) a.stop();
      await h?.destroy();
      await topo?.destroy();
      await plugin?.destroy();
    }, 60_000);

    it('VERSION answers in the asked version (or the latest) with the versions berth-cni speaks', async () => {
      for (const v of VERSIONS) {
        const r = await cni({ command: 'VERSION', path: '' }, { cniVersion: v });
        expect(r).toMatchObject({ code: 0, json: { cniVersion: v, supportedVersions: [...VERSIONS] } });
      }
      expect((await cni({ command: 'VERSION', path: '' }, '')).json).toEqual({ cniVersion: '1.1.0', supportedVersions: [...VERSIONS] });
    });

    for (const version of VERSIONS) {
      it(`${version}: ADD gives the address, routes and DNS in the version's result; CHECK passes; DEL twice succeeds`, async () => {
        const short = `v${++seq}`;
        const netns = await ns(short);
        const key = { containerId: `ctr-${version.replace(/\./g, '')}-${seq}`, netns, ifname: 'eth0' };
        const add = await cni({ command: 'ADD', ...key }, conf(version, { runtimeConfig: { aliases: { web: [`alias${seq}`] }, dns: { searches: ['example.test'] } } }));
        expect(add.stderr).toBe('');
        expect(add.code).toBe(0);
        const res = add.json as { cniVersion: string; interfaces: { name: string; mac?: string; sandbox?: string; mtu?: number }[]; ips: Record<string, unknown>[]; routes: unknown[]; dns: unknown };
        expect(res.cniVersion).toBe(version);
        expect(res.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: netns });
        expect(res.interfaces[0]!.name).toMatch(/^bv[0-9a-f]{12}$/);
        expect('mtu' in res.interfaces[1]!).toBe(version === '1.1.0');
        expect(res.ips).toHaveLength(1);
        expect(res.ips[0]).toMatchObject({ gateway: GW, interface: 1 });
        expect(res.ips[0]!.address).toMatch(/^10\.94\.0\.\d+\/24$/);
        expect(res.ips[0]!.version).toBe(version === '0.4.0' ? '4' : undefined);
        expect(res.routes).toEqual([{ dst: '0.0.0.0/0', gw: GW }]);
        expect(res.dns).toEqual({ nameservers: [GW], search: ['example.test'] });

        // The kernel agrees with the result.
        expect(await addrs(short)).toEqual([res.ips[0]!.address]);
        expect(await defaultVia(short)).toMatchObject({ gateway: GW, dev: 'eth0' });
        const mac = (JSON.parse((await run('ip', ['-n', topo!.ns(short), '-j', 'link', 'show', 'dev', 'eth0'])).stdout) as { address: string }[])[0]!.address;
        expect(mac).toBe(res.interfaces[1]!.mac);
        await topo!.exec(short, 'ping', ['-c', '1', '-W', '2', GW]);

        const check = await cni({ command: 'CHECK', ...key }, { ...conf(version), prevResult: res });
        expect(check).toMatchObject({ code: 0, stdout: '' });

        const hostIf = res.interfaces[0]!.name;
        expect(await links('host')).toContain(hostIf);
        for (let i = 0; i < 2; i++) {
          const del = await cni({ command: 'DEL', ...key }, { ...conf(version), prevResult: res });
          expect(del).toMatchObject({ code: 0, stdout: '' });
        }
        expect(await links(short)).toEqual(['lo']);
        expect(await links('host')).not.toContain(hostIf);
        expect(Object.values((await h!.state()).sandboxes).filter((s) => s.external?.cni?.containerId === key.containerId)).toEqual([]);
        // DEL without CNI_NETNS (the runtime lost the namespace) succeeds too.
        expect(await cni({ command: 'DEL', containerId: key.containerId, ifname: 'eth0' }, conf(version))).toMatchObject({ code: 0, stdout: '' });
      });
    }

    describe('two containers on one network', () => {
      let ip1 = '';
      let ip2 = '';
      let c1: Agent;
      let c2: Agent;
      let res2: Record<string, unknown> = {};
      const k1 = { containerId: 'web1', ifname: 'eth0', netns: '' };
      const k2 = { containerId: 'web2', ifname: 'eth0', netns: '' };

      beforeAll(async () => {
        k1.netns = await ns('c1');
        k2.netns = await ns('c2');
        const a1 = await cni({ command: 'ADD', ...k1 }, conf('1.1.0', { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], aliases: ['front'] } }));
        expect(a1.code, a1.stdout).toBe(0);
        const a2 = await cni({ command: 'ADD', ...k2 }, conf('1.1.0', { runtimeConfig: { aliases: ['back'], ips: ['10.94.0.200/24'] } }));
        expect(a2.code, a2.stdout).toBe(0);
        res2 = a2.json!;
        web1 = { res: a1.json!, netns: k1.netns };
        ip1 = ((a1.json!.ips as { address: string }[])[0]!.address).split('/')[0]!;
        ip2 = ((a2.json!.ips as { address: string }[])[0]!.address).split('/')[0]!;
        c1 = await Agent.start('c1', k1.netns);
        c2 = await Agent.start('c2', k2.netns);
        agents.push(c1, c2);
        await c1.listen('tcp', 80);
        await c2.listen('tcp', 7000);
      }, 60_000);

      it('the requested address is given; each reaches the other and resolves it by its alias through berth\'s DNS', async () => {
        expect(ip2).toBe('10.94.0.200');
        expect(await c1.probe('tcp', ip2, 7000)).toMatchObject({ ok: true, reply: { by: 'c2', peer: ip1 } });
        const dig = await tryRun('nsenter', [`--net=${k1.netns}`, '--', 'dig', `@${GW}`, '+short', '+time=2', '+tries=1', 'back', 'A']);
        expect(dig.stdout.trim()).toBe(ip2);
        const dig2 = await tryRun('nsenter', [`--net=${k2.netns}`, '--', 'dig', `@${GW}`, '+short', '+time=2', '+tries=1', 'front', 'A']);
        expect(dig2.stdout.trim()).toBe(ip1);
      });

      it('the portMapping is reachable from the outside namespace, with no proxy process', async () => {
        const ext = await Agent.start('ext', topo!.nsPath('ext'));
        agents.push(ext);
        expect(await ext.probe('tcp', UPLINK.host, 8080)).toMatchObject({ ok: true, reply: { by: 'c1' } });
        const procs = (await run('ps', ['-eo', 'comm'])).stdout;
        expect(procs).not.toMatch(/docker-proxy|berth-proxy/);
      });

      it('berthd holds no socket on a CNI host port unless the configuration says holdPorts (the runtime holds its own)', async () => {
        const bind = (port: number) => tryRun('nsenter', [`--net=${h!.nsPath}`, '--', 'python3', '-c', `import socket; s = socket.socket(); s.bind(('0.0.0.0', ${port})); print('bound')`]);
        expect(await bind(8080)).toMatchObject({ code: 0, stdout: 'bound\n' });
        const k3 = { containerId: 'held1', ifname: 'eth0', netns: await ns('held') };
        const a3 = await cni({ command: 'ADD', ...k3 }, conf('1.1.0', { holdPorts: true, runtimeConfig: { portMappings: [{ hostPort: 8082, containerPort: 80 }] } }));
        expect(a3.code, a3.stdout).toBe(0);
        const held = await bind(8082);
        expect(held.code).not.toBe(0);
        expect(held.stderr).toMatch(/Address already in use/);
        expect((await cni({ command: 'DEL', ...k3 }, conf('1.1.0', { holdPorts: true }))).code).toBe(0);
        expect(await bind(8082)).toMatchObject({ code: 0, stdout: 'bound\n' });
      });

      it('CHECK passes, then detects the interface removed inside the container (and names it)', async () => {
        expect(await cni({ command: 'CHECK', ...k2 }, { ...conf('1.1.0'), prevResult: res2 })).toMatchObject({ code: 0, stdout: '' });
        await run('ip', ['-n', topo!.ns('c2'), 'link', 'del', 'eth0']);
        const r = await cni({ command: 'CHECK', ...k2 }, { ...conf('1.1.0'), prevResult: res2 });
        expect(r.code).toBe(1);
        expect(r.json).toMatchObject({ cniVersion: '1.1.0', code: 101 });
        expect(String(r.json!.msg)).toMatch(/eth0/);
        // CHECK against a prevResult with another address fails too (before the kernel is looked at).
        const other = { ...res2, ips: [{ address: '10.94.0.201/24', gateway: GW, interface: 1 }] };
        const r2 = await cni({ command: 'CHECK', ...k2 }, { ...conf('1.1.0'), prevResult: other });
        expect(r2.json).toMatchObject({ code: 101 });
        expect(String(r2.json!.msg)).toContain('10.94.0.201/24');
        expect((await cni({ command: 'DEL', ...k2 }, conf('1.1.0'))).code).toBe(0);
      });

      it('GC removes the attachments of its network that are not in cni.dev/valid-attachments, and no other', async () => {
        const g1 = { containerId: 'gc1', ifname: 'eth0', netns: await ns('g1') };
        const g2 = { containerId: 'gc2', ifname: 'net1', netns: await ns('g2') };
        for (const k of [g1, g2]) expect((await cni({ command: 'ADD', ...k }, conf('1.1.0'))).code).toBe(0);
        // Another CNI network's attachment on the same berth network: not GC's business.
        const o1 = { containerId: 'gc1', ifname: 'eth1', netns: g1.netns };
        expect((await cni({ command: 'ADD', ...o1 }, conf('1.1.0', { name: 'web-other' }))).code).toBe(0);
        const valid = [{ containerID: 'web1', ifname: 'eth0' }, { containerID: 'gc1', ifname: 'eth0' }];
        const gc = await cni({ command: 'GC' }, { ...conf('1.1.0'), 'cni.dev/valid-attachments': valid });
        expect(gc).toMatchObject({ code: 0, stdout: '' });
        const left = Object.values((await h!.state()).sandboxes).map((s) => s.external?.cni).filter(Boolean);
        expect(left).toContainEqual({ network: 'web', containerId: 'web1', ifname: 'eth0' });
        expect(left).toContainEqual({ network: 'web', containerId: 'gc1', ifname: 'eth0' });
        expect(left).toContainEqual({ network: 'web-other', containerId: 'gc1', ifname: 'eth1' });
        expect(left).not.toContainEqual({ network: 'web', containerId: 'gc2', ifname: 'net1' });
        expect(await links('g2')).toEqual(['lo']);
        expect(await links('g1')).toEqual(['eth0', 'eth1', 'lo']);
        // GC needs the list: without it nothing is removed.
        const bad = await cni({ command: 'GC' }, conf('1.1.0'));
        expect(bad.json).toMatchObject({ code: 7 });
        expect(await links('g1')).toEqual(['eth0', 'eth1', 'lo']);
        for (const [k, n] of [[g1, 'web'], [o1, 'web-other']] as const) expect((await cni({ command: 'DEL', ...k }, conf('1.1.0', { name: n }))).code).toBe(0);
      });

      it('bad inputs get the spec\'s code and a message naming the value, and leave nothing behind', async () => {
        const netns = await ns('bad');
        await run('ip', ['-n', topo!.ns('bad'), 'link', 'add', 'dup0', 'type', 'veth', 'peer', 'name', 'dup1']);
        const key = { containerId: 'bad1', ifname: 'eth0', netns };
        const before = await world('bad', 'c1');
        const cases: { what: string; call: CniCall; stdin: unknown; code: number; msg: RegExp }[] = [
          { what: 'unknown verb', call: { command: 'ATTACH', ...key }, stdin: conf('1.1.0'), code: 4, msg: /CNI_COMMAND 'ATTACH'/ },
          { what: 'no CNI_NETNS on ADD', call: { command: 'ADD', containerId: 'bad1', ifname: 'eth0' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_NETNS is not set/ },
          { what: 'no CNI_CONTAINERID', call: { command: 'ADD', netns, ifname: 'eth0' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_CONTAINERID is not set/ },
          { what: 'no CNI_PATH', call: { command: 'ADD', ...key, path: '' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_PATH is not set/ },
          { what: 'bad CNI_IFNAME', call: { command: 'ADD', ...key, ifname: 'eth0:1' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_IFNAME 'eth0:1'/ },
          { what: 'long CNI_IFNAME', call: { command: 'ADD', ...key, ifname: 'a-very-long-ifname' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_IFNAME 'a-very-long-ifname'/ },
          { what: 'bad CNI_CONTAINERID', call: { command: 'ADD', ...key, containerId: '-x' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_CONTAINERID '-x'/ },
          { what: 'relative CNI_NETNS', call: { command: 'ADD', ...key, netns: 'netns/x' }, stdin: conf('1.1.0'), code: 4, msg: /CNI_NETNS 'netns\/x'/ },
          { what: 'unknown CNI_ARGS key', call: { command: 'ADD', ...key, args: 'FOO=1' }, stdin: conf('1.1.0'), code: 4, msg: /unknown key 'FOO'/ },
          { what: 'malformed CNI_ARGS', call: { command: 'ADD', ...key, args: 'IP' }, stdin: conf('1.1.0'), code: 4, msg: /'IP' is not KEY=VALUE/ },
          { what: 'not JSON', call: { command: 'ADD', ...key }, stdin: '{"cniVersion": ', code: 6, msg: /not JSON/ },
          { what: 'old version', call: { command: 'ADD', ...key }, stdin: conf('0.3.1'), code: 1, msg: /cniVersion "0\.3\.1" is not supported/ },
          { what: 'no version', call: { command: 'ADD', ...key }, stdin: { name: 'web', type: 'berth' }, code: 1, msg: /cniVersion is missing: berth-cni speaks 0\.4\.0, 1\.0\.0, 1\.1\.0/ },
          { what: 'GC in 1.0.0', call: { command: 'GC' }, stdin: { ...conf('1.0.0'), 'cni.dev/valid-attachments': [] }, code: 1, msg: /GC needs cniVersion 1\.1\.0; the configuration says 1\.0\.0/ },
          { what: 'STATUS in 0.4.0', call: { command: 'STATUS' }, stdin: conf('0.4.0'), code: 1, msg: /STATUS needs cniVersion 1\.1\.0/ },
          { what: 'unknown field', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { bridge: 'br0' }), code: 2, msg: /unsupported field "bridge": "br0"/ },
          { what: 'an ipam section', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { ipam: { type: 'host-local' } }), code: 2, msg: /unsupported field "ipam"/ },
          { what: 'bad name', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { name: 'we b' }), code: 7, msg: /"name": "we b"/ },
          { what: 'bad icc', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { icc: 'no' }), code: 7, msg: /"icc": "no" is not true or false/ },
          { what: 'CHECK without prevResult', call: { command: 'CHECK', ...key }, stdin: conf('1.1.0'), code: 7, msg: /CHECK needs "prevResult"/ },
          { what: 'another subnet for an existing network', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { subnet: '10.95.0.0/24' }), code: 7, msg: /network 'web' exists with subnet 10\.94\.0\.0\/24, the CNI configuration asks for 10\.95\.0\.0\/24/ },
          { what: 'icc=false for an existing network with icc', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { icc: false }), code: 7, msg: /exists with icc true/ },
          { what: 'a new network overlapping another', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { network: 'web2', subnet: '10.94.0.128/25' }), code: 7, msg: /subnet 10\.94\.0\.128\/25 overlaps 10\.94\.0\.0\/24 of network 'web'/ },
          { what: 'a bad subnet', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { network: 'web3', subnet: '10.300.0.0/24' }), code: 7, msg: /10\.300\.0\.0\/24/ },
          { what: 'a port out of range', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { portMappings: [{ hostPort: 70000, containerPort: 80 }] } }), code: 7, msg: /portMappings\[0\]\.hostPort: 70000/ },
          { what: 'a bad protocol', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 80, protocol: 'icmp' }] } }), code: 7, msg: /protocol 'icmp'/ },
          { what: 'a host port published already', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }] } }), code: 7, msg: /host port 8080\/tcp is already published by 'cni-web1-eth0'/ },
          { what: 'the port taken on a network made for it', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { network: 'fresh', subnet: '10.96.0.0/24', runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }] } }), code: 7, msg: /host port 8080\/tcp is already published/ },
          { what: 'an address outside the subnet', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { ips: ['10.99.0.5'] } }), code: 7, msg: /10\.99\.0\.5/ },
          { what: 'an address in use', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { ips: [ip1] } }), code: 7, msg: new RegExp(ip1.replace(/\./g, '\\.')) },
          { what: 'a bad MAC', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { mac: '01:00:5e:00:00:01' } }), code: 7, msg: /mac '01:00:5e:00:00:01' is not a unicast MAC/ },
          { what: 'a bad alias', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { runtimeConfig: { aliases: ['no spaces'] } }), code: 7, msg: /alias name 'no spaces'/ },
          { what: 'a bad holdPorts', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { holdPorts: 'yes' }), code: 7, msg: /"holdPorts": "yes" is not true or false/ },
          { what: 'a bad egress rule', call: { command: 'ADD', ...key }, stdin: conf('1.1.0', { args: { berth: { egressAllow: ['nowhere'] } } }), code: 7, msg: /nowhere/ },
          { what: 'an interface of that name in the namespace already', call: { command: 'ADD', ...key, ifname: 'dup0' }, stdin: conf('1.1.0'), code: 7, msg: /CNI_IFNAME 'dup0' exists already in CNI_NETNS/ },
          { what: 'a path that is no namespace', call: { command: 'ADD', ...key, netns: '/tmp' }, stdin: conf('1.1.0'), code: 3, msg: /CNI_NETNS '\/tmp' is not a network namespace/ },
          { what: 'CHECK of an attachment never added', call: { command: 'CHECK', ...key }, stdin: { ...conf('1.1.0'), prevResult: { cniVersion: '1.1.0', interfaces: [{ name: 'eth0', sandbox: netns }], ips: [] } }, code: 3, msg: /no attachment of container 'bad1'/ },
        ];
        for (const c of cases) {
          const r = await cni(c.call, c.stdin);
          expect({ what: c.what, code: r.code, json: r.json?.code, msg: String(r.json?.msg) }).toMatchObject({ what: c.what, code: 1, json: c.code, msg: expect.stringMatching(c.msg) });
          expect(r.json!.cniVersion, c.what).toMatch(/^(0\.4\.0|1\.0\.0|1\.1\.0)$/);
        }
        expect(await world('bad', 'c1')).toEqual(before);
        // The control: the same key and configuration without the fault is accepted.
        const ok = await cni({ command: 'ADD', ...key }, conf('1.1.0'));
        expect(ok.code, ok.stdout).toBe(0);
        expect(await links('bad')).toEqual(['dup0', 'dup1', 'eth0', 'lo']);
        expect((await cni({ command: 'DEL', ...key }, conf('1.1.0'))).code).toBe(0);
      });
    });

    it('STATUS succeeds while berthd serves; with berthd down STATUS says unavailable (50) and ADD and DEL say try again (11); after its restart the attachments are as they were', async () => {
      expect(await cni({ command: 'STATUS' }, conf('1.1.0'))).toMatchObject({ code: 0, stdout: '' });
      await h!.kill('SIGKILL');
      try {
        const st = await cni({ command: 'STATUS' }, conf('1.1.0'));
        expect(st.json).toMatchObject({ cniVersion: '1.1.0', code: 50 });
        expect(String(st.json!.msg)).toContain(h!.socket);
        const netns = await ns('down');
        const add = await cni({ command: 'ADD', containerId: 'down1', ifname: 'eth0', netns }, conf('1.0.0'));
        expect(add.json).toMatchObject({ cniVersion: '1.0.0', code: 11 });
        expect(await links('down')).toEqual(['lo']);
        const del = await cni({ command: 'DEL', containerId: 'down1', ifname: 'eth0', netns }, conf('1.0.0'));
        expect(del.json).toMatchObject({ code: 11 });
        // BERTH_SOCKET is used when the configuration names no socket.
        const { socket: _s, ...noSocket } = conf('1.1.0');
        const st2 = await cni({ command: 'STATUS', env: { BERTH_SOCKET: '/nonexistent/berth.sock' } }, noSocket);
        expect(st2.json).toMatchObject({ code: 50 });
        expect(String(st2.json!.msg)).toContain('/nonexistent/berth.sock');
      } finally {
        // Not a timing bound: a restart re-applies the whole datapath, which takes seconds on a loaded machine.
        await h!.start(['--datapath', datapath], 60_000);
      }
      expect(await cni({ command: 'STATUS' }, conf('1.1.0'))).toMatchObject({ code: 0, stdout: '' });
      // What was attached before the kill is still there and still published.
      expect(await cni({ command: 'CHECK', containerId: 'web1', ifname: 'eth0', netns: web1!.netns }, { ...conf('1.1.0'), prevResult: web1!.res })).toMatchObject({ code: 0, stdout: '' });
      const ext = agents.find((a) => a.name === 'ext')!;
      expect(await ext.probe('tcp', UPLINK.host, 8080)).toMatchObject({ ok: true, reply: { by: 'c1' } });
    }, 120_000);
  });
}
