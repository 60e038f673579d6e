/**
 * With --store etcd:// and --uplink but no --advertise-addr, berthd
 * advertises the uplink's own IPv4 address, also on a host with no default
 * route (before, it refused: "no default route with an IPv4 address to
 * advertise"). An uplink with several addresses, or none, is refused naming
 * them, and the operator is told to give --advertise-addr.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from '../../harness/overlay-lab.js';
import { run } from '../../src/exec.js';

describe('the default advertise address with --uplink', () => {
  let lab: OverlayLab;
  let h: LabHost;
  const registered = async () => {
    const id = (await readFile(join(h.stateDir, 'cluster-host-id'), 'utf8')).trim();
    const out = (await lab.etcdctl('get', '--print-value-only', `/berth/v1/hosts/${id}`)).stdout.trim();
    return out ? (JSON.parse(out) as { underlay: string }).underlay : undefined;
  };
  const ip = (...args: string[]) => run('ip', ['-n', lab.topo.ns(h.short), ...args]);

  beforeAll(async () => {
    lab = await OverlayLab.create(1, { tag: 'berth-adv' });
    h = lab.hosts[0]!;
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
  }, 60_000);

  it('advertises the uplink\'s one address on a host without a default route', async () => {
    expect((await ip('-4', 'route', 'show', 'default')).stdout.trim()).toBe('');
    // the control: given explicitly, as the lab starts it
    expect(await registered()).toBe(h.ip);
    await h.kill();
    await lab.etcdctl('del', '--prefix', '/berth/v1/hosts/');
    expect(await registered()).toBeUndefined();
    await h.start({ advertise: false });
    expect(await registered()).toBe(h.ip);
    await h.berth('network', 'create', '-d', 'overlay', '--subnet', '10.77.0.0/24', 'adv');
    await h.berth('network', 'rm', 'adv');
  });

  it('refuses an uplink with two addresses, or none, naming them', async () => {
    await h.kill();
    await ip('addr', 'add', '198.19.0.99/24', 'dev', 'eth0');
    try {
      await expect(h.start({ advertise: false })).rejects.toThrow(new RegExp(`--uplink eth0 has 2 IPv4 addresses \\(${h.ip.replace(/\./g, '\\.')}, 198\\.19\\.0\\.99\\): give --advertise-addr IP`));
    } finally {
      await ip('addr', 'del', '198.19.0.99/24', 'dev', 'eth0');
    }
    await ip('addr', 'del', `${h.ip}/24`, 'dev', 'eth0');
    try {
      await expect(h.start({ advertise: false })).rejects.toThrow(/--uplink eth0 has no global IPv4 address: give --advertise-addr IP/);
    } finally {
      await ip('addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
    }
    await h.start({ advertise: false });
    expect(await registered()).toBe(h.ip);
  });
});
