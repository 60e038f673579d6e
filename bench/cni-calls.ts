/**
 * How long a runtime waits for berth-cni, as a whole process each (what
 * libcni pays): node on an empty script (the baseline), VERSION (no berthd), ADD with one published
 * port into a fresh namespace, CHECK and DEL, interleaved, each the median
 * of N rounds, against a berthd in a namespace of its own (the harness's
 * BerthHost; the container namespaces are the bench's, removed afterwards).
 * Run it under the kernel-test lock:
 *
 *   flock /tmp/berth-kernel.lock node dist/bench/cni-calls.js [--runs 20] [--datapath bpf|iptables]
 */
import { BerthHost } from '../harness/berthd.js';
import { CniPlugin } from '../harness/cni.js';
import { Topology } from '../harness/topology.js';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Runs @argv to its end, as the plugin is run (spawned, output read), resolving with its exit code. */
function spawned(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    // The environment a runtime gives a plugin (harness/cni.ts passes PATH and the CNI variables only): an inherited
    // NODE_EXTRA_CA_CERTS alone costs node some 40 ms here.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
    child.stdin.end('{}');
  });
}

function flag(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i < 0 ? fallback : (argv[i + 1] ?? '');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runsText = flag(argv, '--runs', '20');
  if (!/^[1-9]\d*$/.test(runsText)) throw new Error(`--runs '${runsText}' is not a positive count`);
  const runs = Number(runsText);
  const datapath = flag(argv, '--datapath', 'bpf');
  if (datapath !== 'bpf' && datapath !== 'iptables') throw new Error(`--datapath '${datapath}' is not bpf or iptables`);
  const topo = new Topology(`bcni${process.pid % 10000}-`);
  let host: BerthHost | undefined;
  const plugin = await CniPlugin.create();
  try {
    host = await BerthHost.create(topo, 'host', ['--datapath', datapath], { timeoutMs: 60_000, onCreated: (h) => (host = h) });
    const conf = { cniVersion: '1.1.0', name: 'bench', type: 'berth', subnet: '10.97.0.0/24', socket: host.socket };
    // The baseline starts like the plugin does: /bin/sh execs node on a script (an empty one).
    const empty = join(plugin.dir, 'empty.mjs');
    await writeFile(empty, '');
    await writeFile(join(plugin.dir, 'noop'), `#!/bin/sh\nexec ${process.execPath} ${empty} "$@"\n`, { mode: 0o755 });
    const times = new Map<string, number[]>(['node (empty script)', 'VERSION', 'ADD', 'CHECK', 'DEL'].map((k) => [k, []]));
    const timed = async <R extends { code: number; stdout: string }>(name: string, fn: () => Promise<R>): Promise<R> => {
      const t0 = process.hrtime.bigint();
      const r = await fn();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.code !== 0) throw new Error(`${name} failed: ${r.stdout}`);
      times.get(name)!.push(ms);
      return r;
    };
    for (let i = 0; i <= runs; i++) {
      const short = `c${i}`;
      await topo.addNetns(short);
      const key = { containerId: `bench${i}`, ifname: 'eth0', netns: topo.nsPath(short) };
      const rc = { ...conf, runtimeConfig: { portMappings: [{ hostPort: 9000 + i, containerPort: 80 }] } };
      await timed('VERSION', () => plugin.invoke({ command: 'VERSION', path: '' }, { cniVersion: '1.1.0' }));
      const add = await timed('ADD', () => plugin.invoke({ command: 'ADD', ...key }, rc));
      await timed('CHECK', () => plugin.invoke({ command: 'CHECK', ...key }, { ...rc, prevResult: add.json }));
      await timed('DEL', () => plugin.invoke({ command: 'DEL', ...key }, rc));
      await timed('node (empty script)', () => spawned([join(plugin.dir, 'noop')]));
      // The first round warms the page cache and berthd: not counted.
      if (i === 0) for (const t of times.values()) t.length = 0;
    }
    const base = median(times.get('node (empty script)')!);
    process.stdout.write(`berth-cni, ${datapath} datapath, ${runs} rounds\n| call | median ms | min–max ms | over node |\n| --- | --- | --- | --- |\n`);
    for (const [name, t] of times) {
      const m = median(t);
      process.stdout.write(`| ${name} | ${m.toFixed(1)} | ${Math.min(...t).toFixed(1)}–${Math.max(...t).toFixed(1)} | ${name === 'node (empty script)' ? '' : `+${(m - base).toFixed(1)}`} |\n`);
    }
  } finally {
    await host?.destroy();
    await topo.destroy();
    await plugin.destroy();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
