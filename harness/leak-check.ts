/**
 * What a test run must leave as it found it. `snapshot FILE` records the
 * machine before the run; `check FILE` compares after it and fails on any new
 * network namespace, root-namespace link, root tc qdisc or XDP program, bpffs
 * pin or mount of berth's, or berth process. `summary FILE` prints vitest's
 * JSON result as one "N passed, M failed" line.
 */
import { readFile, writeFile, readdir } from 'node:fs/promises';
import { run, tryRun } from '../src/exec.js';

interface Snapshot {
  netns: string[];
  rootLinks: string[];
  rootQdiscs: string[];
  rootXdp: string[];
  bpfPins: string[];
  bpfMounts: string[];
  procs: string[];
}

const WATCHED_PROCS = /^(berthd|socat|iperf3|sockperf|ping|dockerd|etcd|containerd|containerd-shim|conmon|aardvark-dns)$/;

async function take(): Promise<Snapshot> {
  const netns = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
  const links = JSON.parse((await run('ip', ['-j', '-d', 'link', 'show'])).stdout) as { ifname: string; xdp?: unknown }[];
  const qdiscs = (await run('tc', ['qdisc', 'show'])).stdout.split('\n').filter((l) => /clsact|ingress/.test(l));
  let pins: string[] = [];
  try {
    pins = (await readdir('/sys/fs/bpf')).filter((n) => n.startsWith('berth'));
  } catch {
    pins = [];
  }
  // Every bpffs mount: one at /sys/fs/bpf that was not there before means a berthd ran without a private bpffs.
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.startsWith('bpf '));
  const ps = await tryRun('ps', ['-eo', 'pid=,comm=']);
  const procs = ps.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([, c]) => c && WATCHED_PROCS.test(c)).map(([p, c]) => `${c}[${p}]`);
  return {
    netns,
    rootLinks: links.map((l) => l.ifname),
    rootQdiscs: qdiscs,
    rootXdp: links.filter((l) => l.xdp).map((l) => l.ifname),
    bpfPins: pins,
    bpfMounts: mounts,
    procs,
  };
}

async function main(): Promise<number> {
  const [cmd, file] = process.argv.slice(2);
  if (!file || !['snapshot', 'check', 'summary'].includes(cmd ?? '')) {
    process.stderr.write('usage: leak-check snapshot|check|summary FILE\n');
    return 2;
  }
  if (cmd === 'snapshot') {
    await writeFile(file, JSON.stringify(await take()));
    return 0;
  }
  if (cmd === 'summary') {
    const r = JSON.parse(await readFile(file, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTotalTests: number };
    process.stdout.write(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped\n`);
    return r.numTotalTests > 0 && r.numFailedTests === 0 ? 0 : 1;
  }
  const before = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
  const after = await take();
  const leaks: string[] = [];
  for (const key of Object.keys(after) as (keyof Snapshot)[]) {
    const added = after[key].filter((x) => !before[key].includes(x));
    if (added.length) leaks.push(`${key}: ${added.join(', ')}`);
  }
  if (leaks.length) {
    process.stderr.write(`leak check FAILED: the run left behind\n  ${leaks.join('\n  ')}\n`);
    return 1;
  }
  process.stdout.write('leak check: nothing left behind (namespaces, links, qdiscs, XDP, pins, mounts, processes)\n');
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => { process.stderr.write(`leak-check: ${(e as Error).message}\n`); process.exitCode = 1; },
);
