/**
 * berthd's config file on the real kernel: values from --config FILE take
 * effect (the default network's bridge, its gateway address, the embedded
 * DNS's port), a flag overrides the file's key, and the API info and
 * `berth doctor` name each value's source (and the info package.json's version). A file with a bad value is refused
 * naming the file, the key and the value, and leaves nothing behind; the
 * control is the same host started with the good file, seen by the same probes.
 */
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthHost } from '../../harness/berthd.js';
import type { Topology } from '../../harness/topology.js';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { ConfigReport } from '../../src/daemon/config.js';
import { testTopology } from '../helpers/kernel.js';

let topo: Topology;
let dir: string;
const hosts: BerthHost[] = [];

beforeAll(async () => {
  topo = testTopology();
  dir = await mkdtemp(join(tmpdir(), 'berth-test-config-'));
});

afterAll(async () => {
  for (const h of hosts.reverse()) await h.destroy({ graceful: true }).catch((e: unknown) => console.error(e));
  await rm(dir, { recursive: true, force: true });
  await topo?.destroy();
});

const GOOD = { datapath: 'bpf', bip: '10.97.0.1/24', bridge: 'cfgfile0', dnsPort: 5354 };
const FLAG_BRIDGE = 'cfgflag0';

async function configFile(name: string, doc: object): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, JSON.stringify(doc));
  return f;
}

interface IpLink { ifname: string; linkinfo?: { info_kind?: string }; addr_info?: { family: string; local: string; prefixlen: number }[] }

/** The links of @ns with their kind and addresses, as the kernel has them. */
async function links(ns: string): Promise<IpLink[]> {
  return JSON.parse((await run('ip', ['-n', ns, '-d', '-j', 'addr', 'show'])).stdout) as IpLink[];
}

/** The local addresses of UDP sockets bound in @ns, "ADDR:PORT" each. */
async function udpListeners(ns: string): Promise<string[]> {
  const out = (await run('ip', ['netns', 'exec', ns, 'ss', '-Hlun'])).stdout;
  return out.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[3]!);
}

/** What berth pinned in @h's bpffs (a fresh bpffs also holds the kernel's own maps.debug and progs.debug). */
async function berthPins(h: BerthHost): Promise<string[]> {
  return (await readdir(h.bpffs!.path)).filter((f) => f.startsWith('berth'));
}

const exists = (p: string) => access(p).then(() => true, () => false);

describe('berthd --config FILE', () => {
  let h: BerthHost;
  let good: string;

  it('a bad value in the file is refused naming the file, the key and the value, and leaves nothing behind', async () => {
    const bad = await configFile('bad.json', { ...GOOD, bip: '10.97.0.300/24' });
    const refused = await BerthHost.create(topo, 'cfg', ['--config', bad, '--bridge', FLAG_BRIDGE], { ext: 'cfgx', onCreated: (x) => hosts.push(x) }).then(
      () => 'started',
      (e: Error) => e.message,
    );
    h = hosts[hosts.length - 1]!;
    expect(refused).toMatch(/berthd exited \(1\) during start/);
    expect(refused).toContain(`berthd: config file ${bad}: key "bip": "10.97.0.300/24" is not valid; expected an address/prefix such as 172.17.0.1/16`);
    // Nothing behind: no bridge (only what the harness made), no state, no socket, no pins.
    expect((await links(h.ns)).map((l) => l.ifname).sort()).toEqual(['lo', 'uplink0']);
    expect(await readdir(h.stateDir)).toEqual(['host-resolv.conf']);
    expect(await exists(h.socket)).toBe(false);
    expect(await berthPins(h)).toEqual([]);
    expect(await udpListeners(h.ns)).toEqual([]);
    expect(h.proc).toBeUndefined();
  });

  it('the good file starts (the control): its bridge name, gateway and DNS port take effect, and the flag wins over its bridge', async () => {
    good = await configFile('good.json', GOOD);
    await h.start(['--config', good, '--bridge', FLAG_BRIDGE]);
    const all = await links(h.ns);
    // The same probes that saw nothing now see the bridge, the state, the socket, the pins and the DNS.
    const br = all.find((l) => l.ifname === FLAG_BRIDGE);
    expect(br?.linkinfo?.info_kind).toBe('bridge');
    expect(br?.addr_info?.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([GOOD.bip]);
    // The file's bridge name was overridden, so no such device.
    expect(all.map((l) => l.ifname)).not.toContain(GOOD.bridge);
    expect(await readdir(h.stateDir)).toContain('state.json');
    expect(await exists(h.socket)).toBe(true);
    expect(await berthPins(h)).toContain('berth');
    // The default network says the same.
    const net = JSON.parse((await h.berth('network', 'inspect', 'bridge')).stdout) as { IPAM: { Config: { Subnet: string; Gateway: string }[] } }[];
    expect(net[0]!.IPAM.Config).toEqual([expect.objectContaining({ Subnet: '10.97.0.0/24', Gateway: '10.97.0.1' })]);
    // The embedded DNS (user-defined networks have one, as in Docker) listens on the file's port.
    await h.berth('network', 'create', '--subnet', '10.98.0.0/24', 'n1');
    const udp = await udpListeners(h.ns);
    expect(udp).toContain(`10.98.0.1:${GOOD.dnsPort}`);
    expect(udp).not.toContain('10.98.0.1:53');
    await h.berth('network', 'rm', 'n1');
  });

  it('the API info and berth doctor name each value and where it came from', async () => {
    const info = await h.api.call<{ version: string; config: ConfigReport; datapath: { choice: string } }>('GET', '/v1/info');
    // package.json's version, not a copy of it.
    expect(info.version).toBe((JSON.parse(await readFile(projectPath('package.json'), 'utf8')) as { version: string }).version);
    expect(info.datapath.choice).toBe('bpf');
    expect(info.config.file).toBe(good);
    expect(info.config.fileRead).toBe(true);
    expect(info.config.values).toMatchObject({
      bip: { value: GOOD.bip, source: 'file' },
      dnsPort: { value: GOOD.dnsPort, source: 'file' },
      datapath: { value: 'bpf', source: 'file' },
      bridge: { value: FLAG_BRIDGE, source: 'flag' },
      stateDir: { value: h.stateDir, source: 'flag' },
      driftCheckMs: { value: 2000, source: 'default' },
      store: { value: 'embedded', source: 'default' },
      uplink: { value: null, source: 'default' },
    });
    const doctor = (await h.berth('doctor', '--bpffs', h.bpffs!.path)).stdout;
    expect(doctor).toContain(`berthd config     file ${good} (read)`);
    expect(doctor).toMatch(/^ {2}bip {13}10\.97\.0\.1\/24 \(file\)$/m);
    expect(doctor).toMatch(/^ {2}dnsPort {9}5354 \(file\)$/m);
    expect(doctor).toMatch(/^ {2}bridge {10}cfgflag0 \(flag\)$/m);
    expect(doctor).toMatch(/^ {2}driftCheckMs {4}2000 \(default\)$/m);
    const j = JSON.parse((await h.berth('doctor', '--format', 'json', '--bpffs', h.bpffs!.path)).stdout) as { daemon: { config: ConfigReport } };
    expect(j.daemon.config.values).toEqual(info.config.values);
  });
});
