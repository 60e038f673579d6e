/**
 * berthd run as a host service, on the real kernel: in a private mount
 * namespace (as `ip netns exec`, `unshare -m` or systemd's PrivateMounts
 * give it) with a bpffs directory it must mount itself before the overlay
 * pins into it; one berthd per pinned datapath; and pinned maps of another
 * layout (a berthd upgrade) replaced, migrated or refused before anything is
 * touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthHost, UPLINK } from '../../harness/berthd.js';
import type { Topology } from '../../harness/topology.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { ctKey, ctVal, dpNet } from '../../src/bpf/abi.js';
import { PinOwner } from '../../src/daemon/lock.js';
import { run, tryRun } from '../../src/exec.js';
import { addon } from '../../src/native/addon.js';
import type { SandboxView } from '../../src/api/views.js';
import { testTopology } from '../helpers/kernel.js';

const PRIVATE_MOUNTS = ['unshare', '--mount', '--propagation', 'private', '--'];
const NSFS_MAGIC = 0x6e736673;

let topo: Topology;
const hosts: BerthHost[] = [];
const dirs: string[] = [];
const bpffses: PrivateBpffs[] = [];
let etcd: ChildProcess | undefined;

beforeAll(() => {
  topo = testTopology();
});

afterAll(async () => {
  // Every step is attempted whatever failed before it: the namespaces go last, always.
  const step = (p: Promise<unknown>) => p.catch((e: unknown) => console.error(e));
  if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
    const done = new Promise((r) => etcd!.once('exit', r));
    etcd.kill('SIGKILL');
    await done;
  }
  for (const h of hosts.reverse()) await step(h.destroy({ graceful: true }));
  for (const b of bpffses) await step(b.release());
  for (const d of dirs) await step(rm(d, { recursive: true, force: true }));
  await topo?.destroy();
});

const json = async <T>(p: Promise<{ stdout: string }>): Promise<T> => JSON.parse((await p).stdout) as T;

async function host(short: string, args: string[], ext: string): Promise<BerthHost> {
  return BerthHost.create(topo, short, args, { ext, onCreated: (h) => hosts.push(h) });
}

async function startEtcd(ns: string, ip: string): Promise<void> {
  const data = await mkdtemp(join(tmpdir(), 'berth-test-etcd-'));
  dirs.push(data);
  const url = `http://${ip}:2379`;
  let log = '';
  etcd = spawn('ip', ['netns', 'exec', ns, 'etcd', '--name', 'svc', '--data-dir', data, '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380', '--initial-cluster', 'svc=http://127.0.0.1:2380'], { stdio: ['ignore', 'pipe', 'pipe'] });
  etcd.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  etcd.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const deadline = Date.now() + 20_000;
  while ((await tryRun('ip', ['netns', 'exec', ns, 'etcdctl', '--endpoints', url, '--dial-timeout', '1s', 'endpoint', 'health'])).code !== 0) {
    if (Date.now() > deadline || etcd.exitCode !== null) throw new Error(`etcd did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function isNamespace(path: string): Promise<boolean> {
  return (await statfs(path).catch(() => undefined))?.type === NSFS_MAGIC;
}

/** The mount's fstype at @dir in the mount namespace of @pid ('' when nothing is mounted there). */
async function fstypeIn(pid: number | 'self', dir: string): Promise<string> {
  const args = ['-n', '-o', 'FSTYPE', '--mountpoint', dir];
  const r = pid === 'self' ? await tryRun('findmnt', args) : await tryRun('nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', 'findmnt', ...args]);
  return r.code === 0 ? r.stdout.trim() : '';
}

describe('berthd in a private mount namespace, with a bpffs directory not mounted yet and an etcd store', () => {
  let h: BerthHost;
  let pid: number;
  let fresh: string;

  it('mounts the bpffs before the overlay and the datapath pin into it', async () => {
    h = await host('svc', ['--datapath', 'iptables'], 'svcx');
    await startEtcd(topo.ns('svcx'), UPLINK.ext);
    await h.kill('SIGTERM');
    fresh = await mkdtemp(join(tmpdir(), 'berth-test-fresh-bpffs-'));
    dirs.push(fresh);
    expect(await fstypeIn('self', fresh)).toBe('');
    // --store before --bpffs, as the operator wrote it: the overlay loads first, and needs the bpffs.
    await h.start(['--store', `etcd://${UPLINK.ext}:2379`, '--advertise-addr', UPLINK.host, '--bpffs', fresh, '--datapath', 'bpf'], 20_000, PRIVATE_MOUNTS);
    pid = (await h.api.call<{ pid: number }>('GET', '/v1/info')).pid;
    // berthd's own mount namespace really is another one, and the bpffs is mounted there only.
    expect(await run('readlink', [`/proc/${pid}/ns/mnt`]).then((r) => r.stdout)).not.toBe(await run('readlink', ['/proc/self/ns/mnt']).then((r) => r.stdout));
    expect(await fstypeIn(pid, fresh)).toBe('bpf');
    expect(await fstypeIn('self', fresh)).toBe('');
    const pins = (await run('nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', 'ls', '-R', fresh])).stdout;
    expect(pins).toMatch(/berth_ovl_ports/);
    expect(pins).toMatch(/berth_dp_ct/);
    // The store works: an overlay network is made.
    await h.berth('network', 'create', '-d', 'overlay', '--subnet', '10.93.0.0/24', 'ovl1');
    await h.berth('network', 'create', '--subnet', '10.94.0.0/24', 'br1');
  });

  it('berth exec enters a sandbox whose namespace only berthd sees mounted', async () => {
    await h.berth('run', '-d', '--name', 'a', '--network', 'br1', '--hostname', 'alpha', '--', 'sleep', '600');
    const [a] = await json<SandboxView[]>(h.berth('inspect', 'a'));
    const key = a!.NetworkSettings.SandboxKey;
    const ip = a!.NetworkSettings.Networks.br1!.IPAddress;
    // The operator's view: the sandbox's namespace file is not a namespace here (what made every exec fail).
    expect(await isNamespace(key)).toBe(false);
    const direct = await tryRun('nsenter', [`--net=${key}`, '--', 'true']);
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toMatch(/Invalid argument/);
    // ...and berth exec gets in all the same, with the sandbox's files.
    const out = (await h.berth('exec', 'a', '--', 'sh', '-c', 'ip -4 -o addr show; cat /etc/hostname')).stdout;
    expect(out).toContain(`inet ${ip}/24`);
    expect(out).toMatch(/^alpha$/m);
    // The exit code comes back.
    expect((await h.berthTry('exec', 'a', '--', 'sh', '-c', 'exit 3')).code).toBe(3);
    await h.berth('rm', '-f', 'a');
  });
});

describe('one berthd per pinned datapath', () => {
  it('a second berthd on the same bpffs is refused, naming the owner; the pins are taken over once it is dead, and released on stop', async () => {
    const h1 = await host('own1', [], 'ownx1');
    const bpffs = h1.bpffs!.path;
    const pid1 = (await h1.api.call<{ pid: number }>('GET', '/v1/info')).pid;
    const netsId = async () => {
      const m = await addon().openPinnedMap(join(bpffs, 'berth', 'berth_dp_nets'));
      const id = m.info().id;
      m.close();
      return id;
    };
    const idBefore = await netsId();
    const refused = await host('own2', ['--bpffs', bpffs], 'ownx2').then(() => 'started', (e: Error) => e.message);
    const h2 = hosts[hosts.length - 1]!;
    expect(refused).toContain(`another berthd (pid ${pid1}, state directory ${h1.stateDir}) owns the eBPF datapath pinned in ${join(bpffs, 'berth')}`);
    expect(refused).toContain('--bpffs');
    expect(await netsId()).toBe(idBefore);
    expect(h1.proc).toBeDefined();
    expect(await PinOwner.owner(bpffs)).toEqual({ pid: pid1, stateDir: h1.stateDir });

    // The owner dies (no chance to release anything): the next berthd takes the pins over.
    await h1.kill('SIGKILL');
    await h2.start(['--bpffs', bpffs]);
    const pid2 = (await h2.api.call<{ pid: number }>('GET', '/v1/info')).pid;
    expect(await PinOwner.owner(bpffs)).toEqual({ pid: pid2, stateDir: h2.stateDir });
    // A graceful stop lets go: the pins stay, the owner record goes.
    await h2.kill('SIGTERM');
    expect(await readdir(bpffs)).not.toContain('berth-owner');
    expect(await readdir(join(bpffs, 'berth'))).toContain('berth_dp_nets');
  });
});

describe('pinned maps of another layout (a berthd upgrade)', () => {
  it('a connection table of another value size is refused before anything is touched; rebuilt maps are replaced and counters resized with their counts', async () => {
    const fs = await PrivateBpffs.create('berth-test-bpffs-');
    bpffses.push(fs);
    const root = join(fs.path, 'berth');
    await mkdir(root);
    const ct = join(root, 'berth_dp_ct');
    await run('bpftool', ['map', 'create', ct, 'type', 'lru_hash', 'key', String(ctKey.size), 'value', '16', 'entries', '1024', 'name', 'berth_dp_ct']);
    const ctId = (await addon().openPinnedMap(ct)).info().id;

    const refused = await host('lay', ['--bpffs', fs.path, '--datapath', 'bpf'], 'layx').then(() => 'started', (e: Error) => e.message);
    const h = hosts[hosts.length - 1]!;
    expect(refused).toContain(`map berth_dp_ct pinned at ${ct} is lru_hash key ${ctKey.size} B, value 16 B, max_entries 1024, flags 0x0; this berthd expects lru_hash key ${ctKey.size} B, value ${ctVal.size} B, max_entries 262144, flags 0x0`);
    expect(refused).toContain('nothing was changed');
    // Untouched: the same map at the same pin, nothing pinned beside it, nothing attached.
    expect((await addon().openPinnedMap(ct)).info().id).toBe(ctId);
    expect(await readdir(root)).toEqual(['berth_dp_ct']);
    expect((await run('ip', ['netns', 'exec', topo.ns('lay'), 'bpftool', 'net', 'show'])).stdout).not.toMatch(/berth_from/);

    // The control: without that pin, but with a rebuilt map of another value size and a
    // counter array of another size holding counts, berthd starts over them.
    await rm(ct);
    const nets = join(root, 'berth_dp_nets');
    await run('bpftool', ['map', 'create', nets, 'type', 'hash', 'key', '4', 'value', '8', 'entries', '16', 'name', 'berth_dp_nets']);
    const drops = join(root, 'berth_dp_drops');
    await run('bpftool', ['map', 'create', drops, 'type', 'percpu_array', 'key', '4', 'value', '16', 'entries', '40', 'name', 'berth_dp_drops']);
    const old = await addon().openPinnedMap(drops);
    const ncpus = old.info().ncpus;
    const val = Buffer.alloc(old.info().valueBytes);
    for (let c = 0; c < ncpus; c++) {
      val.writeBigUInt64LE(7n, c * 16);
      val.writeBigUInt64LE(700n, c * 16 + 8);
    }
    const k30 = Buffer.alloc(4);
    k30.writeUInt32LE(30);
    await old.update(k30, val);
    old.close();

    await h.start(['--bpffs', fs.path, '--datapath', 'bpf']);
    await h.berth('network', 'create', '--subnet', '10.95.0.0/24', 'n1');
    const n = await addon().openPinnedMap(nets);
    expect(n.info().valueSize).toBe(dpNet.size);
    expect((await n.entries()).count).toBeGreaterThanOrEqual(1);
    n.close();
    const d = await addon().openPinnedMap(drops);
    expect(d.info().maxEntries).toBe(32);
    const got = (await d.lookup(k30))!;
    let packets = 0n;
    let bytes = 0n;
    for (let c = 0; c < ncpus; c++) {
      packets += got.readBigUInt64LE(c * 16);
      bytes += got.readBigUInt64LE(c * 16 + 8);
    }
    d.close();
    expect([packets, bytes]).toEqual([7n * BigInt(ncpus), 700n * BigInt(ncpus)]);
    expect((await readdir(root)).filter((f) => f.endsWith('_old'))).toEqual([]);
    expect(h.logs).toMatch(/"map":"berth_dp_nets".*pinned map of another layout replaced/);
    expect(h.logs).toMatch(/"map":"berth_dp_drops","copied":32,"of":40/);
    await h.berth('network', 'rm', 'n1');
  });
});
