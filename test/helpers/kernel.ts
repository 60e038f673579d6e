/** Shared set-up for kernel tests: unique namespaces, a private bpffs, cleanup. */
import { Topology } from '../../harness/topology.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { run } from '../../src/exec.js';

let seq = 0;

/** A topology whose names are unique to this process and test. */
export function testTopology(): Topology {
  seq += 1;
  return new Topology(`bt${process.pid % 100000}-${seq}-`.slice(0, 12));
}

/**
 * Two namespaces "a" and "b" joined by veth a0 (10.77.0.1) <-> b0 (10.77.0.2),
 * IPv6 off and static neighbours, so every packet on the wire is one the test
 * sent: counters can be asserted exactly.
 */
export async function pairTopology(): Promise<Topology> {
  const t = testTopology();
  try {
    await t.addNetns('a');
    await t.addNetns('b');
    for (const ns of ['a', 'b']) {
      await run('ip', ['netns', 'exec', t.ns(ns), 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    await t.veth({ ns: 'a', name: 'a0', addr: '10.77.0.1/24' }, { ns: 'b', name: 'b0', addr: '10.77.0.2/24' });
    const macA = await mac(t, 'a', 'a0');
    const macB = await mac(t, 'b', 'b0');
    await run('ip', ['-n', t.ns('a'), 'neigh', 'replace', '10.77.0.2', 'lladdr', macB, 'dev', 'a0', 'nud', 'permanent']);
    await run('ip', ['-n', t.ns('b'), 'neigh', 'replace', '10.77.0.1', 'lladdr', macA, 'dev', 'b0', 'nud', 'permanent']);
    return t;
  } catch (e) {
    await t.destroy();
    throw e;
  }
}

async function mac(t: Topology, ns: string, ifname: string): Promise<string> {
  const { stdout } = await run('ip', ['-n', t.ns(ns), '-j', 'link', 'show', 'dev', ifname]);
  return (JSON.parse(stdout) as { address: string }[])[0]!.address;
}

export async function ping(t: Topology, from: string, to: string, count: number): Promise<void> {
  await t.exec(from, 'ping', ['-c', String(count), '-i', '0.02', '-W', '1', '-q', to]);
}

/**
 * Sends @count UDP datagrams from @from to @to:@port and reports how many a
 * listener in @listenNs received.
 */
export async function udpDelivered(t: Topology, from: string, listenNs: string, to: string, port: number, count: number): Promise<number> {
  const listener = run('ip', ['netns', 'exec', t.ns(listenNs), 'timeout', '1.5', 'socat', '-u', `UDP-RECV:${port},bind=${to}`, 'STDOUT'], { timeoutMs: 5000 }).then(
    (r) => r.stdout,
    (e: { stdout?: string }) => e.stdout ?? '',
  );
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < count; i++) await t.exec(from, 'bash', ['-c', `echo m${i} > /dev/udp/${to}/${port}`]);
  const out = await listener;
  return out.split('\n').filter((l) => /^m\d+$/.test(l)).length;
}

export { PrivateBpffs };
