/**
 * The control plane end to end: berthd in a test-made "host" namespace, the
 * berth CLI against its socket, sandboxes as further namespaces, and what
 * their processes really see (addresses, routes, files, names, packets).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { NetworkView, SandboxView } from '../../src/api/views.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';
import { BerthHost as TestHost, UPLINK } from '../../harness/berthd.js';

let topo: Topology;
let h: TestHost;
let upstream: ChildProcess | undefined;

const json = async <T>(p: Promise<{ stdout: string }>): Promise<T> => JSON.parse((await p).stdout) as T;
const inspect = async (name: string) => (await json<SandboxView[]>(h.berth('inspect', name)))[0]!;
const exec = (name: string, ...cmd: string[]) => h.berth('exec', name, '--', ...cmd);
const runSb = (name: string, ...args: string[]) => h.berth('run', '-d', '--name', name, ...args, '--', 'sleep', 'infinity');

async function refused(args: string[], message: RegExp): Promise<string> {
  const r = await h.berthTry(...args);
  expect(r.code, `berth ${args.join(' ')} should fail`).not.toBe(0);
  expect(r.stderr).toMatch(message);
  return r.stderr;
}

beforeAll(async () => {
  topo = testTopology();
  h = await TestHost.create(topo);
  upstream = spawn('nsenter', [`--net=${topo.nsPath('ext')}`, '--', process.execPath, projectPath('test', 'helpers', 'fake-upstream.mjs'), UPLINK.ext], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => upstream!.stdout!.once('data', r));
}, 60_000);

afterAll(async () => {
  upstream?.kill('SIGKILL');
  await h?.destroy();
  await topo?.destroy();
});

describe('networks', () => {
  it('lists the built-in networks from the start', async () => {
    const list = await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'));
    expect(list.map((n) => [n.Name, n.Driver])).toEqual([['bridge', 'bridge'], ['host', 'host'], ['none', 'null']]);
    const { stdout } = await h.berth('network', 'ls');
    expect(stdout).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/m);
  });

  it('creates a network with its bridge, gateway address and IPAM settings', async () => {
    const id = (await h.berth('network', 'create', '--subnet', '10.50.0.0/16', '--gateway', '10.50.0.254', '--ip-range', '10.50.7.0/24', '-o', 'mtu=1400', 'net1')).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const [n] = await json<NetworkView[]>(h.berth('network', 'inspect', 'net1'));
    expect(n).toMatchObject({ Name: 'net1', Id: id, Driver: 'bridge', Internal: false, Options: { mtu: '1400' } });
    expect(n!.IPAM.Config).toEqual([{ Subnet: '10.50.0.0/16', Gateway: '10.50.0.254', IPRange: '10.50.7.0/24' }]);
    const addrs = JSON.parse((await run('ip', ['-n', h.ns, '-j', 'addr', 'show', 'dev', n!.BridgeName!])).stdout) as { mtu: number; addr_info: { local: string; prefixlen: number }[] }[];
    expect(addrs[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain('10.50.0.254/16');
    expect(addrs[0]!.mtu).toBe(1400);
  });

  it('picks a free subnet when none is given', async () => {
    await h.berth('network', 'create', 'net2');
    const [n] = await json<NetworkView[]>(h.berth('network', 'inspect', 'net2'));
    // The default bridge holds 172.17.0.0/16, so the next of Docker's pools.
    expect(n!.IPAM.Config[0]).toEqual({ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' });
  });
});

describe('sandboxes on a user-defined network', () => {
  beforeAll(async () => {
    await runSb('a', '--network', 'net1', '--hostname', 'alpha', '--dns-search', 'corp.test');
    await runSb('b', '--network', 'net1', '--network-alias', 'web');
    await runSb('c', '--network', 'net2');
  });

  it('get addresses from the ip-range, a default route via the gateway, and their interface', async () => {
    const a = await inspect('a');
    expect(a.State.Status).toBe('running');
    expect(a.NetworkSettings.Networks.net1).toMatchObject({ IPAddress: '10.50.7.0', Gateway: '10.50.0.254', InterfaceName: 'eth0' });
    const routes = (await exec('a', 'ip', '-4', 'route')).stdout;
    expect(routes).toMatch(/^default via 10\.50\.0\.254 dev eth0/m);
    expect((await exec('a', 'cat', '/sys/class/net/eth0/mtu')).stdout.trim()).toBe('1400');
  });

  it('see generated /etc/hosts, /etc/resolv.conf and /etc/hostname', async () => {
    const a = await inspect('a');
    const ip = a.NetworkSettings.Networks.net1!.IPAddress;
    expect((await exec('a', 'cat', '/etc/hosts')).stdout).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')}\\talpha$`, 'm'));
    expect((await exec('a', 'hostname')).stdout.trim()).toBe('alpha');
    expect((await exec('a', 'cat', '/etc/hostname')).stdout.trim()).toBe('alpha');
    const resolv = (await exec('a', 'cat', '/etc/resolv.conf')).stdout;
    expect(resolv).toMatch(/^nameserver 10\.50\.0\.254$/m);
    expect(resolv).toMatch(/^search corp\.test$/m);
  });

  it('reach and resolve each other by name and alias', async () => {
    const b = await inspect('b');
    const bip = b.NetworkSettings.Networks.net1!.IPAddress;
    expect((await exec('a', 'getent', 'hosts', 'b')).stdout.trim()).toMatch(new RegExp(`^${bip.replace(/\./g, '\\.')}\\s+b$`));
    expect((await exec('a', 'getent', 'hosts', 'web')).stdout).toMatch(new RegExp(`^${bip.replace(/\./g, '\\.')}`));
    expect((await exec('a', 'getent', 'hosts', b.Id.slice(0, 12))).stdout).toContain(bip);
    await exec('a', 'ping', '-c', '2', '-W', '2', 'b');
  });

  it('do not resolve sandboxes on other networks', async () => {
    const r = await h.berthTry('exec', 'a', '--', 'getent', 'hosts', 'c');
    expect(r.code).not.toBe(0);
    const r2 = await h.berthTry('exec', 'c', '--', 'getent', 'hosts', 'a');
    expect(r2.code).not.toBe(0);
  });

  it('forward other names to the upstream servers', async () => {
    expect((await exec('a', 'getent', 'hosts', 'www.outside.test')).stdout).toMatch(/^203\.0\.113\.7\s/);
  });

  it('forward a sandbox\'s queries to its own --dns servers', async () => {
    // A second upstream in ext that answers differently.
    await run('ip', ['-n', topo.ns('ext'), 'addr', 'add', '198.18.0.3/24', 'dev', 'eth0']);
    const second = spawn('nsenter', [`--net=${topo.nsPath('ext')}`, '--', process.execPath, projectPath('test', 'helpers', 'fake-upstream.mjs'), '198.18.0.3', '203.0.113.99'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => second.stdout!.once('data', r));
      await runSb('own-dns', '--network', 'net1', '--dns', '198.18.0.3');
      expect((await exec('own-dns', 'cat', '/etc/resolv.conf')).stdout).toMatch(/^nameserver 10\.50\.0\.254$/m);
      expect((await exec('own-dns', 'getent', 'hosts', 'www.outside.test')).stdout).toMatch(/^203\.0\.113\.99\s/);
      expect((await exec('own-dns', 'getent', 'hosts', 'b')).stdout).toMatch(/^10\.50\.7\.\d+\s+b/);
      expect((await exec('a', 'getent', 'hosts', 'www.outside.test')).stdout).toMatch(/^203\.0\.113\.7\s/);
    } finally {
      second.kill('SIGKILL');
      await h.berth('rm', '-f', 'own-dns');
    }
  });

  it('connect adds eth1 with an address; disconnect removes exactly that', async () => {
    await h.berth('network', 'connect', '--alias', 'bee', 'net2', 'b');
    const b = await inspect('b');
    expect(b.NetworkSettings.Networks.net2).toMatchObject({ InterfaceName: 'eth1' });
    const ip2 = b.NetworkSettings.Networks.net2!.IPAddress;
    expect((await exec('b', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth1')).stdout).toContain(`${ip2}/16`);
    // Now b shares net2 with c: c resolves it there, by alias too.
    expect((await exec('c', 'getent', 'hosts', 'bee')).stdout).toMatch(new RegExp(`^${ip2.replace(/\./g, '\\.')}`));
    await exec('c', 'ping', '-c', '1', '-W', '2', ip2);
    const before = (await exec('b', 'ip', '-4', 'route')).stdout;
    await h.berth('network', 'disconnect', 'net2', 'b');
    expect((await exec('b', 'ip', '-o', 'link')).stdout).not.toMatch(/eth1/);
    expect((await exec('b', 'ip', '-4', 'route')).stdout).toMatch(/^default via 10\.50\.0\.254 dev eth0/m);
    expect(before).toMatch(/^default via 10\.50\.0\.254 dev eth0/m);
    expect((await inspect('b')).NetworkSettings.Networks.net2).toBeUndefined();
  });
});

describe('network modes', () => {
  it('none: only loopback', async () => {
    await runSb('lonely', '--network', 'none');
    expect((await exec('lonely', 'ip', '-o', 'link')).stdout.trim().split('\n').map((l) => l.split(': ')[1])).toEqual(['lo']);
  });

  it('host: the host namespace itself', async () => {
    await runSb('hosty', '--network', 'host');
    expect((await exec('hosty', 'ip', '-o', 'link')).stdout).toMatch(/uplink0/);
  });

  it('container:NAME shares the other sandbox\'s namespace', async () => {
    await runSb('side', '--network', 'container:a');
    const a = await inspect('a');
    expect((await exec('side', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0')).stdout).toContain(a.NetworkSettings.Networks.net1!.IPAddress);
    expect((await inspect('side')).HostConfig.NetworkMode).toBe('container:a');
  });
});

describe('the default bridge network', () => {
  it('resolves names only through links, with Docker\'s link environment', async () => {
    await runSb('db', '--expose', '5432', '-e', 'PGUSER=app');
    await runSb('app', '--link', 'db:database');
    const db = await inspect('db');
    const ip = db.NetworkSettings.Networks.bridge!.IPAddress;
    expect(ip).toMatch(/^172\.17\.0\.\d+$/);
    // ahostsv4: the link is an IPv4 /etc/hosts entry; an IPv6 lookup would wait on DNS first.
    expect((await exec('app', 'getent', 'ahostsv4', 'database')).stdout).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+STREAM database`));
    const env = (await exec('app', 'env')).stdout;
    expect(env).toContain(`DATABASE_PORT_5432_TCP_ADDR=${ip}`);
    expect(env).toContain(`DATABASE_PORT_5432_TCP=tcp://${ip}:5432`);
    expect(env).toContain('DATABASE_ENV_PGUSER=app');
    expect(env).toContain('DATABASE_NAME=/app/database');
    // No embedded DNS on the default bridge: nothing answers on its gateway, and app is no name for db.
    const r = await h.berthTry('exec', 'db', '--', 'dig', '+short', '+time=1', '+tries=1', '@172.17.0.1', 'app');
    expect(r.code).not.toBe(0);
    expect((await exec('db', 'cat', '/etc/hosts')).stdout).not.toMatch(/\bapp\b/);
    expect((await exec('app', 'cat', '/etc/resolv.conf')).stdout).toMatch(new RegExp(`^nameserver ${UPLINK.ext}$`, 'm'));
  });

  it('links follow the target when its address changes', async () => {
    const old = (await inspect('db')).NetworkSettings.Networks.bridge!.IPAddress;
    await h.berth('network', 'disconnect', 'bridge', 'db');
    await h.berth('network', 'connect', 'bridge', 'db');
    const now = (await inspect('db')).NetworkSettings.Networks.bridge!.IPAddress;
    expect(now).not.toBe(old);
    expect((await exec('app', 'getent', 'ahostsv4', 'database')).stdout).toMatch(new RegExp(`^${now.replace(/\./g, '\\.')}\\s`));
    await exec('app', 'ping', '-c', '1', '-W', '2', 'database');
  });
});

describe('macvlan networks', () => {
  it('put sandboxes straight on the parent\'s network', async () => {
    await h.berth('network', 'create', '-d', 'macvlan', '--subnet', '198.18.0.0/24', '--gateway', UPLINK.ext, '--ip-range', '198.18.0.128/25', '-o', 'parent=uplink0', 'mv');
    await runSb('m1', '--network', 'mv');
    const m1 = await inspect('m1');
    expect(m1.NetworkSettings.Networks.mv!.IPAddress).toBe('198.18.0.128');
    expect((await exec('m1', 'ip', '-d', '-o', 'link', 'show', 'dev', 'eth0')).stdout).toMatch(/macvlan mode bridge/);
    // The "outside" namespace reaches it directly, with no bridge or NAT of berth's in between.
    await run('ip', ['netns', 'exec', topo.ns('ext'), 'ping', '-c', '1', '-W', '2', '198.18.0.128']);
    await h.berth('rm', '-f', 'm1');
    await h.berth('network', 'rm', 'mv');
  });

  it('refuse a parent that does not exist', async () => {
    await refused(['network', 'create', '-d', 'macvlan', '--subnet', '10.77.0.0/24', '-o', 'parent=nosuch0', 'mv2'], /macvlan parent interface 'nosuch0' does not exist/);
  });
});

describe('run in the foreground', () => {
  it('prints the command\'s output and exits with its code', async () => {
    expect((await h.berth('run', '--name', 'once', '--', 'sh', '-c', 'echo hello from $(hostname)')).stdout).toMatch(/^hello from [0-9a-f]{12}\n$/);
    const r = await h.berthTry('run', '--name', 'fails', '--', 'sh', '-c', 'exit 3');
    expect(r.code).toBe(3);
    expect((await inspect('fails')).State).toMatchObject({ Status: 'exited', ExitCode: 3 });
    await h.berth('rm', 'once', 'fails');
  });
});

describe('host resolv.conf', () => {
  it('changes reach new sandboxes, not running ones', async () => {
    const { writeFile } = await import('node:fs/promises');
    const old = await readFile(h.resolvConf, 'utf8');
    await runSb('r1');
    await writeFile(h.resolvConf, 'nameserver 198.18.0.99\n');
    await h.kill('SIGTERM');
    await h.start();
    await runSb('r2');
    expect((await exec('r1', 'cat', '/etc/resolv.conf')).stdout).toMatch(new RegExp(`^nameserver ${UPLINK.ext}$`, 'm'));
    expect((await exec('r2', 'cat', '/etc/resolv.conf')).stdout).toMatch(/^nameserver 198\.18\.0\.99$/m);
    await writeFile(h.resolvConf, old);
    await h.berth('rm', '-f', 'r1', 'r2');
  });
});

describe('ps, port and rm', () => {
  it('ps lists running sandboxes; port shows publishes', async () => {
    await h.berth('run', '-d', '--name', 'pub', '-p', '127.0.0.1:8080:80', '-p', '9000-9002:9000-9002/udp', '--', 'sleep', 'infinity');
    const { stdout } = await h.berth('ps');
    expect(stdout).toMatch(/^SANDBOX ID\s+NAME\s+COMMAND\s+STATUS\s+PORTS\s+NETWORKS$/m);
    expect(stdout).toMatch(/\bpub\b.*running.*127\.0\.0\.1:8080->80\/tcp/);
    expect((await h.berth('port', 'pub')).stdout).toBe('80/tcp -> 127.0.0.1:8080\n9000-9002/udp -> 0.0.0.0:9000-9002\n');
  });

  it('-P publishes exposed ports on ephemeral host ports', async () => {
    await h.berth('run', '-d', '--name', 'rnd', '--expose', '80', '--expose', '53/udp', '-P', '--', 'sleep', 'infinity');
    const lines = (await h.berth('port', 'rnd')).stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      const port = Number(/:(\d+)$/.exec(l)![1]);
      expect(port).toBeGreaterThanOrEqual(32768);
      expect(port).toBeLessThanOrEqual(60999);
    }
    await h.berth('rm', '-f', 'rnd');
  });

  it('exposure lists published ports and who reaches whom', async () => {
    const e = await json<{ published: { sandbox: string; bind: string; hostPorts: string; proto: string }[]; reachability: { from: string; to: string; network: string; ports: string[] }[] }>(h.berth('exposure', '--format', 'json'));
    expect(e.published).toEqual(expect.arrayContaining([
      expect.objectContaining({ sandbox: 'pub', bind: '127.0.0.1', hostPorts: '8080', proto: 'tcp' }),
      expect.objectContaining({ sandbox: 'pub', bind: '*', hostPorts: '9000-9002', proto: 'udp' }),
    ]));
    expect(e.reachability).toEqual(expect.arrayContaining([{ from: 'a', to: 'b', network: 'net1', ports: ['any'] }]));
    expect(e.reachability.some((r) => r.from === 'a' && r.to === 'c')).toBe(false);
    expect((await h.berth('exposure')).stdout).toMatch(/^PROTO\s+BIND\s+HOST PORTS/m);
  });

  it('rm refuses a running sandbox without -f, and -f removes it and its namespace', async () => {
    await refused(['rm', 'pub'], /sandbox 'pub' is running: use rm -f/);
    const key = (await inspect('pub')).NetworkSettings.SandboxKey;
    await h.berth('rm', '-f', 'pub');
    expect((await run('ip', ['netns', 'list'])).stdout).not.toContain(key.split('/').pop());
    await refused(['inspect', 'pub'], /sandbox 'pub' not found/);
  });
});

describe('bad input is refused, naming the bad value, and changes nothing', () => {
  let before: string;
  beforeAll(async () => {
    before = JSON.stringify(await h.state());
  });
  afterAll(async () => {
    expect(JSON.stringify(await h.state())).toBe(before);
  });

  it.each([
    [['network', 'create', 'net1'], /network 'net1' already exists/],
    [['network', 'create', '--subnet', '10.50.3.0/24', 'x1'], /subnet 10\.50\.3\.0\/24 overlaps 10\.50\.0\.0\/16 of network 'net1'/],
    [['network', 'create', '--subnet', `${UPLINK.host.replace(/\.1$/, '.0')}/24`, 'x2'], /overlaps the host's route 198\.18\.0\.0\/24 on uplink0/],
    [['network', 'create', '--subnet', '10.60.0.1/16', 'x3'], /host bits are set/],
    [['network', 'create', '--subnet', '10.61.0.0/16', '--gateway', '10.62.0.1', 'x4'], /gateway 10\.62\.0\.1 is not a usable address of subnet 10\.61\.0\.0\/16/],
    [['network', 'create', '-o', 'colour=blue', 'x5'], /unknown option 'colour' for the bridge driver \(valid: icc, masquerade, mtu, bridge\.name, router, egress, publish\.allow\)/],
    [['network', 'create', '-o', 'mtu=9', 'x6'], /option mtu=9 is invalid: expected a number from 68 to 65535/],
    [['network', 'create', 'bad name!'], /invalid network name 'bad name!'/],
    [['network', 'create', 'host'], /network name 'host' is reserved/],
    [['network', 'rm', 'bridge'], /'bridge' is a pre-defined network and cannot be removed/],
    [['network', 'rm', 'none'], /'none' is a pre-defined network/],
    [['network', 'rm', 'net1'], /network 'net1' has active endpoints \(a, b\)/],
    [['network', 'rm', 'nope'], /network 'nope' not found/],
    [['run', '-d', '--name', 'a', '--', 'true'], /sandbox name 'a' is already in use/],
    [['run', '-d', '--network', 'nope', '--', 'true'], /network 'nope' not found/],
    [['run', '-d', '--network', 'net1', '--ip', '10.99.0.5', '--', 'true'], /address 10\.99\.0\.5 is outside the pool 10\.50\.0\.0\/16/],
    [['run', '-d', '--network', 'net1', '--ip', '10.50.0.254', '--', 'true'], /address 10\.50\.0\.254 is already in use/],
    [['run', '-d', '--ip', '172.17.0.50', '--', 'true'], /user-specified IP address is supported on user-defined networks only/],
    [['run', '-d', '-p', '80/icmp', '--', 'true'], /invalid publish spec '80\/icmp': protocol 'icmp'/],
    [['run', '-d', '-p', '127.0.0.1:8000-8001:80-82', '--', 'true'], /invalid publish spec '127\.0\.0\.1:8000-8001:80-82'/],
    [['run', '-d', '--network', 'none', '-p', '80', '--', 'true'], /published ports \(-p\/-P\) need a network/],
    [['run', '-d', '--link', 'ghost:g', '--', 'true'], /sandbox 'ghost' not found/],
    [['run', '-d', '--add-host', 'nocolon', '--', 'true'], /invalid --add-host 'nocolon'/],
    [['run', '-d', '--dns', '1.2.3', '--', 'true'], /invalid DNS server '1\.2\.3'/],
    [['network', 'connect', 'net1', 'a'], /sandbox 'a' is already connected to network 'net1'/],
    [['network', 'connect', 'net1', 'lonely'], /sandbox 'lonely' uses --network none and cannot be connected/],
    [['network', 'disconnect', 'net2', 'a'], /sandbox 'a' is not connected to network 'net2'/],
  ])('berth %j', async (args, message) => {
    await refused(args as string[], message as RegExp);
  });

  it('a port already published by another sandbox, naming it', async () => {
    await h.berth('run', '-d', '--name', 'p1', '-p', '7000:80', '--', 'sleep', 'infinity');
    before = JSON.stringify(await h.state());
    await refused(['run', '-d', '-p', '7000:81', '--', 'true'], /host port 7000\/tcp is already published by 'p1'/);
  });
});

describe('network prune', () => {
  it('removes networks without endpoints and keeps the others', async () => {
    await h.berth('network', 'create', 'unused1');
    await h.berth('network', 'create', 'unused2');
    const out = (await h.berth('network', 'prune')).stdout.trim().split('\n').sort();
    expect(out).toEqual(['unused1', 'unused2']);
    const names = (await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'))).map((n) => n.Name);
    expect(names).toEqual(expect.arrayContaining(['bridge', 'net1', 'net2', 'host', 'none']));
    expect(names).not.toContain('unused1');
  });
});

describe('berthd', () => {
  it('a second berthd on the same state directory or socket is refused', async () => {
    const second = await run('nsenter', [`--net=${h.nsPath}`, '--', process.execPath, projectPath('dist', 'src', 'daemon', 'berthd.js'), ...h.args()]).then(
      () => '',
      (e: Error) => e.message,
    );
    expect(second).toMatch(/another berthd \(pid \d+\) is using state directory/);
    const { mkdtemp } = await import('node:fs/promises');
    const other = await mkdtemp('/tmp/berth-test-state-');
    const third = await run('nsenter', [`--net=${h.nsPath}`, '--', process.execPath, projectPath('dist', 'src', 'daemon', 'berthd.js'), '--state-dir', other, '--socket', h.socket]).then(
      () => '',
      (e: Error) => e.message,
    );
    await run('rm', ['-rf', other]);
    expect(third).toContain(`another berthd is serving socket ${h.socket}`);
  });

  it('killed with -9 and restarted, loses nothing and repairs the kernel', async () => {
    const netsBefore = await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'));
    const a = await inspect('a');
    const bIp = (await inspect('b')).NetworkSettings.Networks.net1!.IPAddress;
    await h.kill('SIGKILL');
    // While it is dead, sandboxes keep their networking (checked from inside, without berth)...
    await run('nsenter', [`--net=${a.NetworkSettings.SandboxKey}`, '--', 'ping', '-c', '1', '-W', '2', bIp]);
    // ...then someone deletes an interface berth owns and leaves an orphan of berth's naming.
    const st = await h.state();
    const hostIf = Object.values(st.sandboxes).find((s) => s.name === 'b')!.endpoints[0]!.hostIf!;
    await run('ip', ['-n', h.ns, 'link', 'del', hostIf]);
    await run('ip', ['-n', h.ns, 'link', 'add', 'bb-0123456789ab', 'type', 'bridge']);
    await run('ip', ['-n', h.ns, 'link', 'add', 'notberth0', 'type', 'bridge']);
    const bridgeMac = async () => (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show', 'dev', netsBefore.find((n) => n.Name === 'net1')!.BridgeName!])).stdout) as { address: string }[])[0]!.address;
    const macBefore = await bridgeMac();
    // ...and a create cut short left a sandbox directory the store does not have.
    const stray = `${h.stateDir}/sandboxes/${'f'.repeat(64)}`;
    await run('mkdir', ['-p', stray]);
    await writeFile(`${stray}/resolv.conf`, 'nameserver 192.0.2.1\n');
    await h.start();
    expect(h.logs).toMatch(/"msg":"reconciled"/);
    // The re-made port must not change the bridge's MAC (sandboxes' ARP entries for the gateway).
    expect(await bridgeMac()).toBe(macBefore);
    expect(macBefore).toBe(`02:b6:${netsBefore.find((n) => n.Name === 'net1')!.Id.slice(0, 8).match(/../g)!.join(':')}`);
    expect(await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'))).toEqual(netsBefore);
    expect((await inspect('a')).State.Status).toBe('running');
    const links = (await run('ip', ['-n', h.ns, '-o', 'link'])).stdout;
    expect(links).toContain(hostIf);
    expect(links).not.toContain('bb-0123456789ab');
    expect(links).toContain('notberth0');
    await exec('a', 'ping', '-c', '1', '-W', '2', 'b');
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(`${h.stateDir}/sandboxes/${a.Id}/resolv.conf`)).toBe(true);
    await run('ip', ['-n', h.ns, 'link', 'del', 'notberth0']);
  });

  it('state on disk is complete after every acknowledged change', async () => {
    const text = await readFile(`${h.stateDir}/state.json`, 'utf8');
    const st = JSON.parse(text);
    expect(Object.keys(st.networks)).toHaveLength(3);
  });
});
