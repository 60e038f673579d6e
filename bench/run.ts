/**
 * berth's side-by-side benchmark: the physical limit (same topology, no
 * filtering, no NAT) and berth on the iptables datapath, measured in one run,
 * interleaved (A B A B ...), each figure the median of N runs with min and
 * max and a ratio to the limit. Writes bench/results/<date>.json and an SVG
 * per scenario, prints a markdown table. Everything lives in namespaces the
 * harness makes and removes (also on failure and Ctrl-C).
 *
 *   npm run bench -- --quick        (about 2-3 minutes)
 *   npm run bench                   (longer runs, more repetitions)
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tryRun } from '../src/exec.js';
import { projectPath } from '../src/paths.js';
import { listNetns } from '../src/netns/topology.js';
import { percentile, summarize, type Summary } from './lib/stats.js';
import { barChart, type Bar } from './lib/svg.js';
import { PORTS, Servers, connRate, iperf, sockperf, waitPort } from './lib/tools.js';
import { BERTH, BerthWorld, LIMIT, LimitWorld, PREFIX, benchTopology, type SandboxInfo } from './lib/world.js';

interface Opts {
  quick: boolean;
  runs: number;
  seconds: number;
  attach: number;
  scaleRuns: number;
  out: string;
  only: Set<string> | null;
}

const SCENARIOS = ['c2c', 'published', 'masquerade', 'attach', 'publish-scale'];

function parseArgs(argv: string[]): Opts {
  const quick = argv.includes('--quick');
  const get = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1 || v > 1000) throw new Error(`${name} needs an integer 1..1000, got '${argv[i + 1]}'`);
    return v;
  };
  for (const a of argv) {
    if (a.startsWith('--') && !['--quick', '--runs', '--seconds', '--out', '--only'].includes(a)) throw new Error(`unknown option '${a}' (valid: --quick, --runs N, --seconds S, --out DIR, --only ${SCENARIOS.join(',')})`);
  }
  const oi = argv.indexOf('--out');
  const on = argv.indexOf('--only');
  const only = on >= 0 ? new Set((argv[on + 1] ?? '').split(',')) : null;
  for (const x of only ?? []) if (!SCENARIOS.includes(x)) throw new Error(`--only: unknown scenario '${x}' (valid: ${SCENARIOS.join(', ')})`);
  return {
    quick,
    runs: get('--runs') ?? (quick ? 3 : 5),
    seconds: get('--seconds') ?? (quick ? 2 : 10),
    attach: quick ? 30 : 200,
    scaleRuns: quick ? 1 : 3,
    out: oi >= 0 ? argv[oi + 1]! : projectPath('bench', 'results'),
    only,
  };
}

const t0 = Date.now();
function progress(msg: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  process.stderr.write(`[bench ${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
}

/** One system's measurement of one figure: a runner and where it runs. */
interface SystemRun {
  system: string;
  run: () => Promise<number>;
}

interface FigureResult {
  figure: string;
  unit: string;
  higherIsBetter: boolean;
  limit: string;
  systems: { system: string; samples: number[]; summary: Summary; ratio: number | null; deltaToLimit: number | null; extra?: unknown[] }[];
  notMeasured: { system: string; why: string }[];
}

interface ScenarioResult {
  id: string;
  title: string;
  method: string;
  figures: FigureResult[];
}

const NOT_MEASURED = [
  { system: 'berth-bpf', why: 'not measured: eBPF datapath not implemented in this build' },
  { system: 'docker-bridge', why: 'not measured: the harness does not start dockerd yet (its own netns, data and exec roots, an imported busybox image); skipped in this first version for time, although docker.io is installed here' },
];

/** Runs every system @runs times, interleaved (A B A B, then B A B A, ...). */
async function figure(scenario: string, name: string, unit: string, higherIsBetter: boolean, limit: string, systems: SystemRun[], runs: number, extras?: Map<string, unknown[]>): Promise<FigureResult> {
  const samples = new Map<string, number[]>(systems.map((s) => [s.system, []]));
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? systems : [...systems].reverse();
    for (const s of order) {
      const v = await s.run();
      samples.get(s.system)!.push(v);
      progress(`${scenario} · ${name} · ${s.system} · run ${i + 1}/${runs}: ${v.toFixed(unit === 'Gbit/s' ? 2 : 1)} ${unit}`);
    }
  }
  const limitMedian = summarize(samples.get(limit) ?? []).median;
  return {
    figure: name,
    unit,
    higherIsBetter,
    limit,
    systems: systems.map((s) => {
      const summary = summarize(samples.get(s.system)!);
      return {
        system: s.system,
        samples: samples.get(s.system)!,
        summary,
        ratio: Number.isFinite(limitMedian) && limitMedian > 0 ? summary.median / limitMedian : null,
        deltaToLimit: Number.isFinite(limitMedian) ? summary.median - limitMedian : null,
        ...(extras?.get(s.system) ? { extra: extras.get(s.system) } : {}),
      };
    }),
    notMeasured: NOT_MEASURED,
  };
}

/** Latency runner (sockperf p50) that also keeps p99 and the average. */
function latRunner(system: string, ns: string, ip: string, port: number, seconds: number, extras: Map<string, unknown[]>): SystemRun {
  extras.set(system, []);
  return {
    system,
    run: async () => {
      const r = await sockperf(ns, ip, port, seconds);
      extras.get(system)!.push(r);
      return r.p50;
    },
  };
}

/** Connection-rate runner that also keeps wrk's error counts. */
function rateRunner(system: string, ns: string, ip: string, port: number, seconds: number, extras: Map<string, unknown[]>): SystemRun {
  extras.set(system, []);
  return {
    system,
    run: async () => {
      const r = await connRate(ns, ip, port, seconds);
      extras.get(system)!.push({ rate: r.rate, errors: r.errors });
      if (r.errors) progress(`${system}: wrk counted ${r.errors} socket errors or non-2xx answers`);
      return r.rate;
    },
  };
}

async function meta(berth: BerthWorld): Promise<Record<string, unknown>> {
  const cpu = /model name\s*:\s*(.*)/.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const commit = (await tryRun('git', ['-C', projectPath(), 'rev-parse', 'HEAD'])).stdout.trim();
  const dirty = (await tryRun('git', ['-C', projectPath(), 'status', '--porcelain'])).stdout.trim() !== '';
  const info = await berth.info();
  const ver = async (cmd: string, args: string[]) => {
    const r = await tryRun(cmd, args);
    return (r.stdout + r.stderr).split('\n').find((l) => l.trim())?.trim() ?? 'unknown';
  };
  return {
    date: new Date().toISOString(),
    kernel: (await run('uname', ['-r'])).stdout.trim(),
    cpu,
    cpus: (await import('node:os')).cpus().length,
    gitCommit: commit + (dirty ? ' (with uncommitted changes)' : ''),
    node: process.version,
    // other work on the machine skews the figures: the load when the run started (and, below, when it ended)
    loadavgAtStart: (await readFile('/proc/loadavg', 'utf8')).trim(),
    berthVersion: info.version,
    datapath: info.datapath,
    tools: {
      iperf3: await ver('iperf3', ['--version']),
      sockperf: await ver('sockperf', ['--version']),
      wrk: await ver('wrk', ['-v']),
      nginx: await ver('nginx', ['-v']),
      dockerd: await ver('dockerd', ['--version']),
    },
  };
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the benchmark makes network namespaces: run it as root');
  const stale = await listNetns(PREFIX);
  if (stale.length) throw new Error(`namespaces from an earlier run are still there (${stale.join(', ')}): remove them with 'ip netns del NAME' first`);

  const topo = benchTopology();
  const servers = new Servers();
  let berth: BerthWorld | undefined;
  let instance: string | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      progress('cleanup: servers, sandboxes, berthd, namespaces');
      await servers.stopAll().catch((e: unknown) => progress(`cleanup: servers: ${(e as Error).message}`));
      if (berth) await berth.destroy().catch((e: unknown) => progress(`cleanup: berth: ${(e as Error).message}`));
      const failures = await topo.destroy();
      for (const f of failures) progress(`cleanup: ${f}`);
      const left = [...(await listNetns(PREFIX)), ...(instance ? await listNetns(`berth-${instance}-`) : [])];
      if (left.length) progress(`cleanup: WARNING namespaces left: ${left.join(', ')}`);
      else progress('cleanup: done, no namespace of this run is left');
    })());
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: stopping and cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    progress(`mode ${o.quick ? 'quick' : 'full'}: ${o.runs} interleaved runs per figure; throughput ${o.seconds} s, latency and connection rate ${Math.max(1, Math.round(o.seconds / 2))} s`);
    progress('building the limit topology (veth pair; veth + bridge, routed uplink)');
    const limit = await LimitWorld.build(topo);
    progress('building the berth topology (berthd --datapath iptables in bb-bench-bhost)');
    berth = await BerthWorld.build(topo, () => undefined);
    const info = await berth.info();
    berth.pid = Number(info.pid);
    instance = String(info.instance);
    const [s1, s2] = await berth.makePair();
    const m = await meta(berth);
    progress(`berth ${String(m.berthVersion)}, datapath ${JSON.stringify(m.datapath)}`);

    const want = (id: string) => !o.only || o.only.has(id);
    // The control-plane scenarios run first, on an idle host with an empty conntrack table
    // (after the traffic scenarios the iptables datapath's conntrack flushes take longer).
    const control: ScenarioResult[] = [];
    {
      const scenarios = control;
    // 6. attach latency
    if (want('attach')) {
      progress(`attach: ${o.attach} sequential sandbox creates with one published port, then removes`);
      const create: number[] = [];
      const remove: number[] = [];
      const made: SandboxInfo[] = [];
      for (let i = 0; i < o.attach; i++) {
        const t = performance.now();
        made.push(await berth.createSandbox(`attach-${i}`, [`${22000 + i}:80`]));
        create.push(performance.now() - t);
        if ((i + 1) % 10 === 0) progress(`attach: ${i + 1}/${o.attach} created, last ${create[i]!.toFixed(1)} ms`);
      }
      for (const sb of made) {
        const t = performance.now();
        await berth.removeSandbox(sb.id);
        remove.push(performance.now() - t);
      }
      progress(`attach: create p50 ${percentile(create, 50).toFixed(1)} ms p99 ${percentile(create, 99).toFixed(1)} ms; remove p50 ${percentile(remove, 50).toFixed(1)} ms`);
      const fig = (name: string, samples: number[]): FigureResult => ({
        figure: name, unit: 'ms', higherIsBetter: false, limit: '',
        systems: [{ system: 'berth-iptables', samples, summary: summarize(samples), ratio: null, deltaToLimit: null, extra: [{ p50: percentile(samples, 50), p99: percentile(samples, 99) }] }],
        notMeasured: NOT_MEASURED,
      });
      scenarios.push({ id: 'attach', title: 'Sandbox attach latency (API, sequential)', method: `POST /v1/sandboxes (create + connect to the default bridge + publish one port, command 'sleep infinity'), timed at the client, ${o.attach} in a row; then DELETE ?force=1 each. No limit: there is nothing to compare with`, figures: [fig('create + publish', create), fig('remove', remove)] });
    }

    // 4. publish scale
    if (want('publish-scale')) {
      const variants: [string, string[]][] = [
        ['no ports', []],
        ['1,000-port range', ['20000-20999:20000-20999']],
        ['1,000 single ports', Array.from({ length: 1000 }, (_, i) => `${21000 + i}:${1000 + i}`)],
      ];
      const pub = new Map<string, number[]>(variants.map(([v]) => [v, []]));
      const rem = new Map<string, number[]>(variants.map(([v]) => [v, []]));
      const mem: unknown[] = [];
      const rss = new Map<string, number[]>(variants.map(([v]) => [v, []]));
      const procs = new Map<string, number[]>(variants.map(([v]) => [v, []]));
      for (let i = 0; i < o.scaleRuns; i++) {
        for (const [v, publish] of i % 2 ? [...variants].reverse() : variants) {
          const before = await berth.daemonStats();
          let t = performance.now();
          const sb = await berth.createSandbox(`scale-${i}`, publish);
          const tp = performance.now() - t;
          // a short-lived helper (iptables-save of the drift check) can be caught in the tree: take the fewest of three looks
          let after = await berth.daemonStats();
          for (let k = 0; k < 2; k++) {
            await new Promise((r) => setTimeout(r, 250));
            const again = await berth.daemonStats();
            if (again.processes < after.processes) after = again;
          }
          t = performance.now();
          await berth.removeSandbox(sb.id);
          const tr = performance.now() - t;
          const removed = await berth.daemonStats();
          pub.get(v)!.push(tp);
          rem.get(v)!.push(tr);
          mem.push({ variant: v, run: i + 1, before, afterPublish: after, afterRemove: removed });
          rss.get(v)!.push(after.rssKb / 1024);
          // the sandbox's own command ('sleep infinity') is one process of berthd's tree: count what comes on top
          procs.get(v)!.push(after.processes - before.processes - 1);
          progress(`scale · ${v} · run ${i + 1}/${o.scaleRuns}: create ${tp.toFixed(1)} ms, remove ${tr.toFixed(1)} ms; berthd RSS ${before.rssKb} → ${after.rssKb} → ${removed.rssKb} kB; processes in berthd's tree ${before.processes} → ${after.processes} → ${removed.processes}`);
        }
      }
      const fig = (name: string, m: Map<string, number[]>, unit = 'ms'): FigureResult => ({
        figure: name, unit, higherIsBetter: false, limit: 'no ports',
        systems: variants.map(([v]) => {
          const summary = summarize(m.get(v)!);
          const base = summarize(m.get('no ports')!).median;
          return { system: `berth-iptables, ${v}`, samples: m.get(v)!, summary, ratio: null, deltaToLimit: summary.median - base };
        }),
        notMeasured: NOT_MEASURED,
      });
      scenarios.push({ id: 'publish-scale', title: 'Publish scale: sandbox create/remove with 0, a 1,000-port range, 1,000 single ports', method: 'time of POST /v1/sandboxes with the publish list and of DELETE, at the client; the publish cost is the difference to "no ports". berthd RSS from /proc/PID/status and the number of processes in berthd\'s process tree (the sandbox\'s own command is one of them) before, after publish and after remove', figures: [fig('create (publish)', pub), fig('remove', rem), fig('berthd RSS after publish', rss, 'MB'), fig('processes added besides the sandbox command', procs, 'processes')], ...{ memory: mem } });
    }

    }

    for (const [label, ns] of [['lv2', limit.path('lv2')], ['lc2', limit.path('lc2')], ['lext', limit.path('lext')], ['s2', s2.netns], ['bext', berth.path('bext')]] as const) {
      await servers.startAll(label, ns);
    }
    // Every path answers before anything is timed.
    const checks: [string, string, number][] = [];
    for (const port of [PORTS.iperf, PORTS.sockperf, PORTS.http]) {
      checks.push([limit.path('lv1'), LIMIT.v2, port], [limit.path('lc1'), LIMIT.c2, port], [limit.path('lext'), LIMIT.c2, port], [limit.path('lc1'), LIMIT.ext, port]);
      checks.push([s1.netns, s2.ip, port], [berth.path('bext'), BERTH.up, port], [s1.netns, BERTH.ext, port]);
    }
    for (const [ns, ip, port] of checks) await waitPort(ns, ip, port);
    progress('all paths answer');

    const scenarios: ScenarioResult[] = [];
    const T = o.seconds;
    const R = o.runs;
    // latency and connection rate settle faster than throughput: half the time (at least 1 s)
    const TL = Math.max(1, Math.round(T / 2));

    // 1. same host, container to container
    if (want('c2c')) {
      const sc = 'c2c';
      const sys = (ip1: string, ip2: string, ip3: string, f: (ns: string, ip: string) => Promise<number>): SystemRun[] => [
        { system: 'limit-veth', run: () => f(limit.path('lv1'), ip1) },
        { system: 'limit-bridge', run: () => f(limit.path('lc1'), ip2) },
        { system: 'berth-iptables', run: () => f(s1.netns, ip3) },
      ];
      const ex = new Map<string, unknown[]>();
      const lx = new Map<string, unknown[]>();
      const figures = [
        await figure(sc, 'TCP throughput', 'Gbit/s', true, 'limit-veth', sys(LIMIT.v2, LIMIT.c2, s2.ip, (ns, ip) => iperf(ns, ip, PORTS.iperf, T)), R),
        await figure(sc, 'TCP latency p50 (half RTT)', 'µs', false, 'limit-veth', [
          latRunner('limit-veth', limit.path('lv1'), LIMIT.v2, PORTS.sockperf, TL, lx),
          latRunner('limit-bridge', limit.path('lc1'), LIMIT.c2, PORTS.sockperf, TL, lx),
          latRunner('berth-iptables', s1.netns, s2.ip, PORTS.sockperf, TL, lx),
        ], R, lx),
        await figure(sc, 'TCP connection rate', 'conn/s', true, 'limit-veth', [
          rateRunner('limit-veth', limit.path('lv1'), LIMIT.v2, PORTS.http, TL, ex),
          rateRunner('limit-bridge', limit.path('lc1'), LIMIT.c2, PORTS.http, TL, ex),
          rateRunner('berth-iptables', s1.netns, s2.ip, PORTS.http, TL, ex),
        ], R, ex),
      ];
      scenarios.push({ id: sc, title: 'Same host, container to container', method: 'limit-veth: two namespaces joined by one veth pair; limit-bridge: two namespaces on a Linux bridge, no netfilter; berth-iptables: two sandboxes on berth\'s default bridge network (172.17.0.0/16), made through the API', figures });
    }

    // 2. published port from the external namespace
    if (want('published')) {
      const sc = 'published';
      const ex = new Map<string, unknown[]>();
      const lx = new Map<string, unknown[]>();
      const figures = [
        await figure(sc, 'TCP throughput', 'Gbit/s', true, 'limit-routed', [
          { system: 'limit-routed', run: () => iperf(limit.path('lext'), LIMIT.c2, PORTS.iperf, T) },
          { system: 'berth-iptables', run: () => iperf(berth!.path('bext'), BERTH.up, PORTS.iperf, T) },
        ], R),
        await figure(sc, 'TCP latency p50 (half RTT)', 'µs', false, 'limit-routed', [
          latRunner('limit-routed', limit.path('lext'), LIMIT.c2, PORTS.sockperf, TL, lx),
          latRunner('berth-iptables', berth.path('bext'), BERTH.up, PORTS.sockperf, TL, lx),
        ], R, lx),
        await figure(sc, 'TCP connection rate', 'conn/s', true, 'limit-routed', [
          rateRunner('limit-routed', limit.path('lext'), LIMIT.c2, PORTS.http, TL, ex),
          rateRunner('berth-iptables', berth.path('bext'), BERTH.up, PORTS.http, TL, ex),
        ], R, ex),
      ];
      scenarios.push({ id: sc, title: 'Published port from the external namespace', method: 'limit-routed: ext → host (forwarding, no NAT, no filter) → bridge → server namespace at its own address; berth-iptables: ext → host uplink address:published port (DNAT) → sandbox', figures });
    }

    // 3. outbound masquerade
    if (want('masquerade')) {
      const sc = 'masquerade';
      const ex = new Map<string, unknown[]>();
      const figures = [
        await figure(sc, 'TCP throughput', 'Gbit/s', true, 'limit-routed', [
          { system: 'limit-routed', run: () => iperf(limit.path('lc1'), LIMIT.ext, PORTS.iperf, T) },
          { system: 'berth-iptables', run: () => iperf(s1.netns, BERTH.ext, PORTS.iperf, T) },
        ], R),
        await figure(sc, 'TCP connection rate', 'conn/s', true, 'limit-routed', [
          rateRunner('limit-routed', limit.path('lc1'), LIMIT.ext, PORTS.http, TL, ex),
          rateRunner('berth-iptables', s1.netns, BERTH.ext, PORTS.http, TL, ex),
        ], R, ex),
      ];
      scenarios.push({ id: sc, title: 'Outbound masquerade, container to external namespace', method: 'limit-routed: container → bridge → host (forwarding, no NAT) → ext, ext routes back; berth-iptables: sandbox → berth0 → host (MASQUERADE to the uplink address) → ext', figures });
    }

    await servers.stopAll();

    scenarios.push(...control);
    // Output
    const date = new Date().toISOString();
    m.loadavgAtEnd = (await readFile('/proc/loadavg', 'utf8')).trim();
    const result = { meta: m, command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), mode: o.quick ? 'quick' : 'full', runs: R, seconds: T, notMeasured: NOT_MEASURED, scenarios };
    await mkdir(o.out, { recursive: true });
    const stamp = date.replace(/[:.]/g, '-');
    const jsonPath = join(o.out, `${stamp}.json`);
    await writeFile(jsonPath, JSON.stringify(result, null, 2) + '\n');
    for (const sc of scenarios) {
      const svgs = sc.figures.map((f) => {
        const bars: Bar[] = f.systems.map((s) => ({ label: s.system.replace('berth-iptables, ', ''), median: s.summary.median, min: s.summary.min, max: s.summary.max, ratio: s.ratio }));
        if (sc.id !== 'publish-scale' && sc.id !== 'attach') bars.push(...f.notMeasured.map((n) => ({ label: n.system, median: NaN, min: NaN, max: NaN, note: 'not measured' })));
        return barChart(`${sc.title}: ${f.figure}`, f.unit, bars, { higherIsBetter: f.higherIsBetter });
      });
      for (const [i, svg] of svgs.entries()) {
        await writeFile(join(o.out, `${stamp}-${sc.id}-${i + 1}.svg`), svg);
      }
    }
    progress(`wrote ${jsonPath} and ${scenarios.reduce((n, s) => n + s.figures.length, 0)} SVG charts`);
    process.stdout.write('\n' + markdown(result.meta, scenarios) + '\n');
    return 0;
  } catch (e) {
    if (berth?.daemon) process.stderr.write(`bench: berthd ${berth.daemon.running ? 'is running' : `exited (${berth.daemon.proc.exitCode ?? berth.daemon.proc.signalCode})`}; its last log lines:\n${berth.daemon.logs.split('\n').slice(-15).join('\n')}\n`);
    throw e;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'processes') return v.toFixed(0);
  if (unit === 'Gbit/s') return v.toFixed(2);
  if (unit === 'conn/s') return v.toFixed(0);
  return v.toFixed(1);
}

function markdown(meta: Record<string, unknown>, scenarios: ScenarioResult[]): string {
  const lines = [
    `berth bench, ${String(meta.date)}, load average at start ${String(meta.loadavgAtStart).split(' ').slice(0, 3).join(' ')}, kernel ${String(meta.kernel)}, ${String(meta.cpu)} (${String(meta.cpus)} CPUs), commit ${String(meta.gitCommit).slice(0, 12)}, node ${String(meta.node)}`,
    '',
    '| scenario | figure | system | median | min–max | vs limit |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const sc of scenarios) {
    for (const f of sc.figures) {
      for (const s of f.systems) {
        let vs = '—';
        if (sc.id === 'attach') {
          const e = s.extra?.[0] as { p50: number; p99: number };
          lines.push(`| ${sc.id} | ${f.figure} (${f.unit}) | ${s.system} | p50 ${num(e.p50, f.unit)}, p99 ${num(e.p99, f.unit)} | ${num(s.summary.min, f.unit)}–${num(s.summary.max, f.unit)} | no limit |`);
          continue;
        }
        if (sc.id === 'publish-scale') vs = f.unit !== 'ms' ? '—' : s.deltaToLimit !== null && !s.system.endsWith('no ports') ? `+${num(s.deltaToLimit, f.unit)} ms over no ports` : 'baseline';
        else if (s.system === f.limit) vs = 'limit';
        else if (s.ratio !== null) vs = `${s.ratio.toFixed(2)}×` + (f.unit === 'µs' && s.deltaToLimit !== null ? ` (${s.deltaToLimit >= 0 ? '+' : ''}${s.deltaToLimit.toFixed(1)} µs)` : '');
        const errs = (s.extra as { errors?: number }[] | undefined)?.reduce((n, x) => n + (x.errors ?? 0), 0);
        const errNote = errs ? ` (${errs} wrk errors)` : '';
        lines.push(`| ${sc.id} | ${f.figure} (${f.unit}) | ${s.system} | ${num(s.summary.median, f.unit)}${errNote} | ${num(s.summary.min, f.unit)}–${num(s.summary.max, f.unit)} | ${vs} |`);
      }
    }
  }
  lines.push('', 'Not measured:');
  for (const n of NOT_MEASURED) lines.push(`- ${n.system}: ${n.why}`);
  lines.push('- connection rate to the last of 10,000 published ports, policy scale, concurrent attach, overlay, hairpin and 127.0.0.1 paths: not in this harness yet');
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
