/**
 * The control-plane part of `berth demo`: berthd in the demo's host
 * namespace, a user-defined network with two sandboxes that find each other
 * by name through the embedded DNS, and what they see; then the datapath at
 * work (./datapath.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.cjs';
import type { NetworkView, SandboxView } from '../../src/api/views.js';
import { BerthdProcess } from '../berthd.js';
import { removeLeftovers } from '../leftovers.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { run } from '../../src/exec.js';
import { sandboxArgv, type ProcessSpec } from '../../src/sandbox/process.js';
import type { Topology } from '../topology.js';
import { datapathDemo, type DatapathDemo } from './datapath.js';

export interface ControlPlaneDemo {
  datapath: string;
  /** what the datapath did (./datapath.ts) */
  packets: DatapathDemo;
  networks: { name: string; driver: string; subnet: string }[];
  sandboxes: { name: string; ip: string; hostname: string }[];
  resolved: string;
  pingOk: boolean;
}

type Say = (line: string) => void;

async function execIn(api: ApiClient, name: string, cmd: string[]): Promise<string> {
  const spec = await api.call<ProcessSpec>('POST', `/v1/sandboxes/${name}/exec`, { cmd });
  const argv = sandboxArgv(spec);
  return (await run(argv[0]!, argv.slice(1))).stdout;
}

export async function controlPlaneDemo(topo: Topology, say: Say): Promise<ControlPlaneDemo> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-demo-state-'));
  const socket = join(dir, 'berth.sock');
  const resolvConf = join(dir, 'host-resolv.conf');
  await writeFile(resolvConf, 'nameserver 198.18.0.2\n');
  let d: BerthdProcess | undefined;
  let bpffs: PrivateBpffs | undefined;
  try {
    say('\n== berthd in netns host (state in a temporary directory)');
    // Its pins go to a bpffs of the demo's own (removed with it), not the machine's /sys/fs/bpf.
    bpffs = await PrivateBpffs.create('berth-demo-bpffs-');
    d = await BerthdProcess.start(topo.nsPath('host'), ['--state-dir', dir, '--socket', socket, '--resolv-conf', resolvConf, '--log-level', 'info', '--bpffs', bpffs.path]);
    const api = new ApiClient(socket);
    const info = await api.call<{ datapath: { choice: string; reason: string } }>('GET', '/v1/info');
    say(`   datapath: ${info.datapath.choice} (${info.datapath.reason})`);

    await api.call('POST', '/v1/networks', { name: 'demo-net', subnets: ['10.123.0.0/24'] });
    for (const name of ['web', 'client']) {
      await api.call('POST', '/v1/sandboxes', { name, network: 'demo-net', hostname: name, cmd: ['sleep', 'infinity'] });
    }
    const nets = await api.call<NetworkView[]>('GET', '/v1/networks');
    const sbs = await api.call<SandboxView[]>('GET', '/v1/sandboxes');
    say('   berth network ls:');
    for (const n of nets) say(`     ${n.Name.padEnd(10)} ${n.Driver.padEnd(8)} ${n.IPAM.Config[0]?.Subnet ?? ''}`);
    say('   berth ps:');
    for (const s of sbs) say(`     ${s.Name.padEnd(8)} ${s.State.Status.padEnd(8)} ${s.NetworkSettings.Networks['demo-net']?.IPAddress ?? ''}`);

    const resolved = (await execIn(api, 'client', ['getent', 'hosts', 'web'])).trim();
    say(`   client: getent hosts web -> ${resolved}   (answered by berth's embedded DNS on 10.123.0.1)`);
    const ping = await execIn(api, 'client', ['ping', '-c', '2', '-W', '2', 'web']).then(() => true, () => false);
    say(`   client: ping web -> ${ping ? 'replies' : 'NO REPLY'}`);

    for (const s of sbs) await api.call('DELETE', `/v1/sandboxes/${s.Name}?force=1`);
    await api.call('DELETE', '/v1/networks/demo-net');
    const packets = await datapathDemo(api, topo, say);
    return {
      datapath: info.datapath.choice,
      packets,
      networks: nets.map((n) => ({ name: n.Name, driver: n.Driver, subnet: n.IPAM.Config[0]?.Subnet ?? '' })),
      sandboxes: sbs.map((s) => ({ name: s.Name, ip: s.NetworkSettings.Networks['demo-net']?.IPAddress ?? '', hostname: s.Config.Hostname })),
      resolved,
      pingOk: ping,
    };
  } finally {
    await d?.stop('SIGKILL');
    await removeLeftovers(dir);
    await rm(dir, { recursive: true, force: true });
    await bpffs?.release();
  }
}
