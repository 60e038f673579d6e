/**
 * How long the `berth` CLI takes as a whole process, beside bare node:
 * `node -e 0`, `berth --help`, `berth version` and `berth ps` against a
 * berthd, interleaved (one of each per round), each the median of N rounds.
 * berthd runs in a namespace of its own (the harness's BerthHost, with a
 * private bpffs and state directory), removed afterwards; run it under the
 * kernel-test lock:
 *
 *   flock /tmp/berth-kernel.lock node dist/bench/cli-startup.js [--runs 10]
 */
import { spawnSync } from 'node:child_process';
import { BerthHost } from '../harness/berthd.js';
import { Topology } from '../harness/topology.js';
import { projectPath } from '../src/paths.js';

const BERTH = projectPath('dist', 'src', 'cli', 'berth.cjs');

function parseRuns(argv: string[]): number {
  const i = argv.indexOf('--runs');
  if (i < 0) return 10;
  const v = argv[i + 1] ?? '';
  if (!/^[1-9]\d*$/.test(v)) throw new Error(`--runs '${v}' is not a positive count`);
  return Number(v);
}

/** Wall time of one whole process, in ms; fails loudly when the command does. */
function timeOnce(argv: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`'${argv.join(' ')}' exited ${r.status ?? r.signal}: ${r.stderr.toString().trim()}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const runs = parseRuns(process.argv.slice(2));
  const topo = new Topology(`bcli${process.pid % 10000}-`);
  let host: BerthHost | undefined;
  try {
    host = await BerthHost.create(topo, 'host', [], { onCreated: (h) => (host = h) });
    const node = process.execPath;
    const cmds: [string, string[]][] = [
      ['node -e 0', [node, '-e', '0']],
      ['berth --help', [node, BERTH, '--help']],
      ['berth version', [node, BERTH, '--socket', host.socket, 'version']],
      ['berth ps', [node, BERTH, '--socket', host.socket, 'ps']],
    ];
    const times = new Map<string, number[]>(cmds.map(([name]) => [name, []]));
    for (const [, argv] of cmds) timeOnce(argv); // warm the page cache
    for (let r = 0; r < runs; r++) for (const [name, argv] of cmds) times.get(name)!.push(timeOnce(argv));
    const base = median(times.get('node -e 0')!);
    process.stdout.write(`| command | median ms | min–max ms | over node -e 0 |\n| --- | --- | --- | --- |\n`);
    for (const [name, t] of times) {
      const m = median(t);
      process.stdout.write(`| \`${name}\` | ${m.toFixed(1)} | ${Math.min(...t).toFixed(1)}–${Math.max(...t).toFixed(1)} | ${name === 'node -e 0' ? '' : `+${(m - base).toFixed(1)}`} |\n`);
    }
    process.stdout.write(`(${runs} interleaved rounds, node ${process.version})\n`);
  } finally {
    await host?.destroy({ graceful: true });
    await topo.destroy();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`cli-startup: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
