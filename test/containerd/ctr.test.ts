/**
 * berth as containerd's network through `ctr run --cni`: a containerd of the
 * test's own (harness/containerd.ts, Debian's 1.6) and berthd in a
 * test-made "host" namespace, once on each datapath. ctr calls CNI itself,
 * from /etc/cni/net.d and /opt/cni/bin only: the harness shows it its own
 * directories there in a private mount namespace, so the machine's are
 * never written. Containers run from a busybox-static root filesystem
 * (--rootfs, with PATH set: there is no image config); their namespaces are runc's.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { BerthHost } from '../../harness/berthd.js';
import { CniPlugin } from '../../harness/cni.js';
import { Containerd } from '../../harness/containerd.js';
import { testTopology } from '../helpers/kernel.js';

const SUBNET = '10.92.0.0/24';
const GW = '10.92.0.1';

for (const datapath of ['bpf', 'iptables'] as const) describe(`containerd (ctr run --cni) with berth-cni on the ${datapath} datapath`, () => {
  let topo: Topology | undefined;
  let h: BerthHost | undefined;
  let plugin: CniPlugin | undefined;
  let cd: Containerd | undefined;
  const cniSandboxes = async () => Object.values((await h!.state()).sandboxes).filter((s) => s.external?.engine === 'cni');
  const hostVeths = async () => (JSON.parse((await run('ip', ['-n', h!.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => /^bv/.test(n));
  const conf = (version: string) => ({ cniVersion: version, name: 'ctrnet', plugins: [{ type: 'berth', network: 'ctrnet', subnet: SUBNET, socket: h!.socket }] });

  let machineNetDir: string[] = [];

  beforeAll(async () => {
    machineNetDir = await readdir('/etc/cni/net.d');
    topo = testTopology();
    h = await BerthHost.create(topo, 'host', ['--datapath', datapath], { timeoutMs: 60_000 });
    plugin = await CniPlugin.create();
    cd = await Containerd.create(h.nsPath, [plugin.bin]);
    // containerd 1.6's go-cni speaks CNI up to 1.0.0; the first file by name is the network.
    await writeFile(join(cd.netDir, '10-berth.conflist'), JSON.stringify(conf('1.0.0'), null, 2));
  }, 120_000);

  afterAll(async () => {
    await cd?.destroy();
    await h?.destroy();
    await topo?.destroy();
    await plugin?.destroy();
  }, 120_000);

  it('a container gets berth\'s address and default route, reaches the gateway; the attachment goes when ctr run ends', async () => {
    const r = await cd!.ctr('run', '--rm', '--cni', '--env', 'PATH=/bin', '--rootfs', cd!.rootfs, 'c1', 'sh', '-c', `ip -4 -o addr show dev eth0; ip route; ping -c 1 -W 2 ${GW}`);
    expect(r.stdout).toMatch(/inet 10\.92\.0\.\d+\/24/);
    expect(r.stdout).toMatch(new RegExp(`^default via ${GW.replace(/\./g, '\\.')} dev eth0`, 'm'));
    expect(r.stdout).toMatch(/1 packets received/);
    // ctr's DEL at the end of a foreground run: nothing of it left in berth, the network made for it gone too.
    expect(await cniSandboxes()).toEqual([]);
    expect(await hostVeths()).toEqual([]);
    expect(Object.values((await h!.state()).networks).map((n) => n.name)).not.toContain('ctrnet');
  }, 60_000);

  it('two containers reach each other by address through berth', async () => {
    const server = spawn('nsenter', cd!.argv(['run', '--rm', '--cni', '--env', 'PATH=/bin', '--rootfs', cd!.rootfs, 'srv', 'httpd', '-f', '-p', '80', '-h', '/www']), { stdio: 'ignore' });
    const exited = new Promise((r) => server.once('exit', r));
    try {
      let ip = '';
      for (let i = 0; i < 100 && !ip; i++) {
        ip = (await cniSandboxes())[0]?.endpoints[0]?.v4 ?? '';
        if (!ip) await new Promise((r) => setTimeout(r, 200));
      }
      expect(ip).toMatch(/^10\.92\.0\.\d+$/);
      let body = '';
      for (let i = 0; i < 10 && !body.includes('berth-ctr'); i++) {
        body = (await cd!.ctrTry('run', '--rm', '--cni', '--env', 'PATH=/bin', '--rootfs', cd!.rootfs, `cli${i}`, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`)).stdout;
      }
      expect(body).toContain('berth-ctr');
      expect(await cniSandboxes()).toHaveLength(1);
    } finally {
      await cd!.ctrTry('task', 'kill', '-s', 'SIGKILL', 'srv');
      await exited;
    }
    expect(await cniSandboxes()).toEqual([]);
    expect(await hostVeths()).toEqual([]);
  }, 120_000);

  it('ctr run -d never calls DEL; berth-cni GC with the runtime\'s valid attachments removes what it left', async () => {
    await cd!.ctr('run', '-d', '--cni', '--env', 'PATH=/bin', '--rootfs', cd!.rootfs, 'bg', 'sleep', '3600');
    await cd!.ctr('task', 'kill', '-s', 'SIGKILL', 'bg');
    for (let i = 0; i < 50 && (await cd!.ctrTry('task', 'rm', 'bg')).code !== 0; i++) await new Promise((r) => setTimeout(r, 200));
    await cd!.ctr('container', 'rm', 'bg');
    // The control: the attachment outlives its container (ctr has no DEL for -d).
    const left = await cniSandboxes();
    expect(left).toHaveLength(1);
    expect(left[0]!.external?.cni?.containerId).toBe('berth-bg');
    // ctr ids are "<namespace>-<id>" in CNI; GC is CNI 1.1.0 (what a runtime that knows its containers would send).
    const gc = await plugin!.invoke({ command: 'GC' }, { cniVersion: '1.1.0', name: 'ctrnet', type: 'berth', network: 'ctrnet', socket: h!.socket, 'cni.dev/valid-attachments': [] });
    expect(gc).toMatchObject({ code: 0, stdout: '' });
    expect(await cniSandboxes()).toEqual([]);
    expect(await hostVeths()).toEqual([]);
  }, 120_000);

  it('wrote nothing to the machine\'s CNI directories', async () => {
    expect(await readdir('/etc/cni/net.d')).toEqual(machineNetDir);
    expect(existsSync('/opt/cni')).toBe(false);
  });
});
