/**
 * berth's side-by-side benchmark: the physical limit (same topology, no
 * filtering, no NAT), berth on each datapath asked for, and Docker as it
 * ships, measured in one run, interleaved (A B C, then C B A, ...), each
 * figure the median of N runs with min and max, a ratio to the limit and the
 * CPU time per transaction. Writes bench/results/<date>.json and an SVG per
 * figure, prints a markdown table. Everything lives in namespaces the harness
 * makes and removes (also on failure and Ctrl-C).
 *
 *   npm run bench -- --quick                                   (a few minutes)
 *   npm run bench -- --quick --systems limit,iptables,docker --only c2c,published
 *   npm run bench                                              (longer runs, more repetitions)
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tryRun } from '../src/exec.js';
import { projectPath } from '../src/paths.js';
import { listNetns } from '../harness/topology.js';
import { percentile, summarize, type Summary } from './lib/stats.js';
import { barChart, type Bar } from './lib/svg.js';
import { PORTS, Servers, connRate, iperf, nsRun, sockperf, waitPort } from './lib/tools.js';
import { BERTH, BerthWorld, LIMIT, LimitWorld, PREFIX, benchTopology, clientSysctls } from './lib/world.js';
import { DOCKER, DockerWorld, rootRuleCount, type ContainerInfo } from './lib/docker.js';
import { machineBusyMs, treeCpuMs, type TreeStats } from './lib/procs.js';
import { OVL, OverlayWorld, PlainOverlayWorld } from './lib/overlay.js';
import { Flooder } from './lib/flood.js';

const SCENARIOS = ['c2c', 'published', 'masquerade', 'hairpin', 'localhost', 'attach', 'concurrent-attach', 'publish-scale', 'overlay', 'drop-flood', 'ports-10k', 'policy-scale'];
const SYSTEMS = ['limit', 'iptables', 'bpf', 'docker', 'docker-noproxy'];
const BERTH_DATAPATHS = ['iptables', 'bpf'];

interface Opts {
  quick: boolean;
  runs: number;
  seconds: number;
  attach: number;
  concurrent: number;
  scaleRuns: number;
  out: string;
  only: Set<string> | null;
  systems: string[];
  dockerPorts: number;
  manyPorts: number;
  policyPairs: number;
}

function parseArgs(argv: string[]): Opts {
  const quick = argv.includes('--quick');
  const valued = ['--runs', '--seconds', '--out', '--only', '--systems', '--docker-ports', '--many-ports', '--policy-pairs'];
  const get = (name: string, max = 1000): number | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${name} needs an integer 1..${max}, got '${argv[i + 1]}'`);
    return v;
  };
  for (const [i, a] of argv.entries()) {
    if (valued.includes(argv[i - 1] ?? '')) continue;
    if (a.startsWith('--') && ![...valued, '--quick'].includes(a)) throw new Error(`unknown option '${a}' (valid: --quick, --runs N, --seconds S, --out DIR, --only ${SCENARIOS.join(',')}, --systems ${SYSTEMS.join(',')}, --docker-ports N, --many-ports N, --policy-pairs N)`);
  }
  const list = (name: string, valid: string[]): string[] | null => {
    const i = argv.indexOf(name);
    if (i < 0) return null;
    const xs = (argv[i + 1] ?? '').split(',').filter(Boolean);
    for (const x of xs) if (!valid.includes(x)) throw new Error(`${name}: unknown '${x}' (valid: ${valid.join(', ')})`);
    return xs;
  };
  const oi = argv.indexOf('--out');
  const only = list('--only', SCENARIOS);
  return {
    quick,
    runs: get('--runs') ?? (quick ? 3 : 5),
    seconds: get('--seconds') ?? (quick ? 2 : 10),
    attach: quick ? 30 : 200,
    concurrent: quick ? 20 : 50,
    scaleRuns: quick ? 1 : 3,
    out: oi >= 0 ? argv[oi + 1]! : projectPath('bench', 'results'),
    only: only ? new Set(only) : null,
    systems: list('--systems', SYSTEMS) ?? ['limit', 'iptables', 'bpf', 'docker', 'docker-noproxy'],
    dockerPorts: get('--docker-ports', 1000) ?? (quick ? 200 : 1000),
    manyPorts: get('--many-ports', 10000) ?? 10000,
    policyPairs: get('--policy-pairs', 10000) ?? 10000,
  };
}

const t0 = Date.now();
function progress(msg: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  process.stderr.write(`[bench ${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
}

/** One sample: the figure's value and how many transactions it made (for CPU per transaction). */
interface Sample {
  value: number;
  tx: number;
  extra?: Record<string, unknown>;
}

/** One system's measurement of one figure: a runner, and the CPU time of the system's own processes. */
interface SystemRun {
  system: string;
  run: () => Promise<Sample>;
  daemonCpuMs?: () => Promise<number>;
  /** the CPU the load tools are pinned to: that CPU's time is also recorded alone (less of other work in it, but none of a proxy's running elsewhere) */
  cpu?: number;
}

interface SystemResult {
  system: string;
  samples: number[];
  summary: Summary;
  ratio: number | null;
  deltaToLimit: number | null;
  /** median machine CPU per transaction (µs, or ms per GB for throughput) and the system's own processes' share */
  cpuPerTx?: { machine: number; daemon: number; unit: string } | undefined;
  extra?: unknown[];
}

interface FigureResult {
  figure: string;
  unit: string;
  higherIsBetter: boolean;
  limit: string;
  systems: SystemResult[];
  notMeasured: { system: string; why: string }[];
}

interface ScenarioResult {
  id: string;
  title: string;
  method: string;
  figures: FigureResult[];
  notMeasured: { system: string; why: string }[];
  [k: string]: unknown;
}

/** Set on SIGINT/SIGTERM: no further sample is taken and no result is written. */
let interrupted = false;

/** Systems not measured in this run, with the reason, for every scenario. */
const skipped: { system: string; why: string }[] = [];

/** Runs every system @runs times, interleaved (A B C, then C B A, ...), with CPU accounting around each sample. */
async function figure(scenario: string, name: string, unit: string, higherIsBetter: boolean, limit: string, systems: SystemRun[], runs: number, txUnit: string, notMeasured: { system: string; why: string }[] = []): Promise<FigureResult> {
  const samples = new Map<string, number[]>(systems.map((s) => [s.system, []]));
  const extras = new Map<string, Record<string, unknown>[]>(systems.map((s) => [s.system, []]));
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? systems : [...systems].reverse();
    for (const s of order) {
      if (interrupted) throw new Error('interrupted');
      const m0 = await machineBusyMs();
      const p0 = s.cpu !== undefined ? await machineBusyMs(s.cpu) : NaN;
      const d0 = s.daemonCpuMs ? await s.daemonCpuMs() : 0;
      const r = await s.run();
      const m1 = await machineBusyMs();
      const p1 = s.cpu !== undefined ? await machineBusyMs(s.cpu) : NaN;
      const d1 = s.daemonCpuMs ? await s.daemonCpuMs() : 0;
      const per = (ms: number) => (txUnit === 'GB' ? ms / r.tx : (ms * 1000) / r.tx);
      samples.get(s.system)!.push(r.value);
      extras.get(s.system)!.push({ ...r.extra, tx: r.tx, txUnit, machineCpuMs: m1 - m0, daemonCpuMs: d1 - d0, machineCpuPerTx: per(m1 - m0), daemonCpuPerTx: per(d1 - d0), ...(s.cpu !== undefined ? { pinnedCpu: s.cpu, pinnedCpuMs: p1 - p0, pinnedCpuPerTx: per(p1 - p0) } : {}) });
      progress(`${scenario} · ${name} · ${s.system} · run ${i + 1}/${runs}: ${num(r.value, unit)} ${unit}; CPU ${per(m1 - m0).toFixed(txUnit === 'GB' ? 0 : 1)} ${txUnit === 'GB' ? 'ms/GB' : `µs/${txUnit}`} (machine), ${per(d1 - d0).toFixed(txUnit === 'GB' ? 0 : 1)} (its own processes)`);
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
      const ex = extras.get(s.system)!;
      const med = (k: string) => summarize(ex.map((e) => Number(e[k])).filter(Number.isFinite)).median;
      return {
        system: s.system,
        samples: samples.get(s.system)!,
        summary,
        ratio: Number.isFinite(limitMedian) && limitMedian > 0 ? summary.median / limitMedian : null,
        deltaToLimit: Number.isFinite(limitMedian) ? summary.median - limitMedian : null,
        cpuPerTx: { machine: med('machineCpuPerTx'), daemon: med('daemonCpuPerTx'), unit: txUnit === 'GB' ? 'ms/GB' : `µs/${txUnit}` },
        extra: ex,
      };
    }),
    notMeasured: [...notMeasured, ...skipped],
  };
}

const tput = (system: string, ns: string, ip: string, T: number, cpu?: () => Promise<number>, port: number = PORTS.iperf): SystemRun => ({
  system, ...(cpu ? { daemonCpuMs: cpu } : {}),
  run: async () => {
    const r = await iperf(ns, ip, port, T);
    return { value: r.gbps, tx: r.bytes / 1e9 };
  },
});
const lat = (system: string, ns: string, ip: string, T: number, cpu?: () => Promise<number>, port: number = PORTS.sockperf): SystemRun => ({
  // sockperf's client and server are pinned to CPU 0, and so is the softirq work of their packets
  system, ...(cpu ? { daemonCpuMs: cpu } : {}), cpu: 0,
  run: async () => {
    const r = await sockperf(ns, ip, port, T);
    return { value: r.p50, tx: r.roundTrips, extra: { p99: r.p99, avg: r.avg } };
  },
});
const rate = (system: string, ns: string, ip: string, T: number, cpu?: () => Promise<number>, port: number = PORTS.http): SystemRun => ({
  system, ...(cpu ? { daemonCpuMs: cpu } : {}),
  run: async () => {
    const r = await connRate(ns, ip, port, T);
    if (r.errors) progress(`${system}: wrk counted ${r.errors} socket errors or non-2xx answers`);
    return { value: r.rate, tx: r.requests, extra: { errors: r.errors } };
  },
});

/** A system under test in the traffic scenarios: its client and server containers, host and ext namespaces. */
interface Peer {
  name: string;
  client: string;
  server: { ns: string; ip: string };
  host: string;
  ext: string;
  up: string;
  extIp: string;
  cpu: () => Promise<number>;
}

/** A system under test in the control-plane scenarios. */
interface Ctl {
  name: string;
  /** what the create time includes */
  createNote: string;
  create: (name: string, publish: string[]) => Promise<unknown>;
  remove: (h: unknown) => Promise<void>;
  stats: () => Promise<TreeStats>;
}

async function meta(berths: BerthWorld[]): Promise<Record<string, unknown>> {
  const cpu = /model name\s*:\s*(.*)/.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const commit = (await tryRun('git', ['-C', projectPath(), 'rev-parse', 'HEAD'])).stdout.trim();
  const dirty = (await tryRun('git', ['-C', projectPath(), 'status', '--porcelain', '--', 'bench', 'src', 'bpf', 'native'])).stdout.trim() !== '';
  const ver = async (cmd: string, args: string[]) => {
    const r = await tryRun(cmd, args);
    return (r.stdout + r.stderr).split('\n').find((l) => l.trim())?.trim() ?? 'unknown';
  };
  const berth: Record<string, unknown> = {};
  for (const b of berths) {
    const info = await b.info();
    berth[b.name] = { version: info.version, datapath: info.datapath };
  }
  return {
    date: new Date().toISOString(),
    kernel: (await run('uname', ['-r'])).stdout.trim(),
    cpu,
    cpus: (await import('node:os')).cpus().length,
    gitCommit: commit + (dirty ? ' (with uncommitted changes)' : ''),
    node: process.version,
    // other work on the machine skews the figures: the load when the run started (and, below, when it ended)
    loadavgAtStart: (await readFile('/proc/loadavg', 'utf8')).trim(),
    berth,
    tools: {
      iperf3: await ver('iperf3', ['--version']),
      sockperf: await ver('sockperf', ['--version']),
      wrk: await ver('wrk', ['-v']),
      nginx: await ver('nginx', ['-v']),
      dockerd: await ver('dockerd', ['--version']),
    },
  };
}

/** The reason a berthd refused to start, from its error: the last log line with a message. */
function refusal(e: unknown): string {
  const text = (e as Error).message;
  const msgs = text.split('\n').flatMap((l) => {
    try {
      const j = JSON.parse(l) as { msg?: string; err?: { message?: string } };
      return [j.err?.message ? `${j.msg ?? ''}: ${j.err.message}` : j.msg ?? ''];
    } catch {
      return l.trim() && !l.startsWith('berthd exited') ? [l.trim()] : [];
    }
  }).filter(Boolean);
  return (msgs.slice(-2).join(' | ') || text.split('\n')[0] || 'unknown').slice(0, 400);
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the benchmark makes network namespaces: run it as root');
  const stale = await listNetns(PREFIX);
  if (stale.length) throw new Error(`namespaces from an earlier run are still there (${stale.join(', ')}): remove them with 'ip netns del NAME' first`);
  const rootRules = await rootRuleCount();

  const topo = benchTopology();
  const servers = new Servers();
  const berths: BerthWorld[] = [];
  const dockers: DockerWorld[] = [];
  const overlays: OverlayWorld[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      progress('cleanup: servers, sandboxes and containers, berthd and dockerd, namespaces');
      await servers.stopAll().catch((e: unknown) => progress(`cleanup: servers: ${(e as Error).message}`));
      for (const d of dockers) await d.destroy().catch((e: unknown) => progress(`cleanup: ${d.name}: ${(e as Error).message}`));
      for (const b of berths) await b.destroy().catch((e: unknown) => progress(`cleanup: ${b.name}: ${(e as Error).message}`));
      for (const w of overlays) await w.destroy().catch((e: unknown) => progress(`cleanup: overlay ${w.name}: ${(e as Error).message}`));
      const failures = await topo.destroy();
      for (const f of failures) progress(`cleanup: ${f}`);
      const left = [...(await listNetns(PREFIX))];
      for (const b of berths) if (b.instance) left.push(...(await listNetns(`berth-${b.instance}-`)));
      for (const w of overlays) for (const h of w.hosts) if (h.instance) left.push(...(await listNetns(`berth-${h.instance}-`)));
      if (left.length) progress(`cleanup: WARNING namespaces left: ${left.join(', ')}`);
      else progress('cleanup: done, no namespace of this run is left');
      const after = await rootRuleCount();
      if (after !== rootRules) progress(`cleanup: WARNING the root namespace's iptables rule count changed during the run (${rootRules} -> ${after}); the harness writes none, check who did`);
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: stopping and cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    progress(`mode ${o.quick ? 'quick' : 'full'}: systems ${o.systems.join(',')}; ${o.runs} interleaved runs per figure; throughput ${o.seconds} s, latency and connection rate ${Math.max(1, Math.round(o.seconds / 2))} s`);
    let limit: LimitWorld | undefined;
    // the overlay scenario builds worlds of its own: with --only overlay, the single-host worlds are not needed
    const singleHost = !o.only || [...o.only].some((x) => x !== 'overlay');
    // nor Docker with only the scenarios that do not measure it
    const dockerUsed = !o.only || [...o.only].some((x) => x !== 'overlay' && x !== 'drop-flood');
    if (o.systems.includes('limit') && singleHost) {
      progress('building the limit topology (veth pair; veth + bridge, routed uplink)');
      limit = await LimitWorld.build(topo);
    } else if (!o.systems.includes('limit')) skipped.push({ system: 'limit', why: 'not asked for (--systems): no ratios' });
    for (const dp of BERTH_DATAPATHS) {
      if (!o.systems.includes(dp)) {
        skipped.push({ system: `berth-${dp}`, why: 'not asked for (--systems)' });
        continue;
      }
      if (!singleHost) continue;
      progress(`building berth-${dp} (berthd --datapath ${dp} in ${PREFIX}${dp}-host)`);
      let w: BerthWorld | undefined;
      try {
        await BerthWorld.build(topo, dp, (x) => berths.push((w = x)));
      } catch (e) {
        const why = `berthd --datapath ${dp} refused to start: ${refusal(e)}`;
        progress(`SKIPPING berth-${dp}: ${why}`);
        skipped.push({ system: `berth-${dp}`, why });
        if (w) {
          berths.splice(berths.indexOf(w), 1);
          await w.destroy().catch(() => undefined);
        }
      }
    }
    for (const [sys, proxy] of [['docker', true], ['docker-noproxy', false]] as const) {
      if (!o.systems.includes(sys)) {
        if (sys === 'docker') skipped.push({ system: sys, why: 'not asked for (--systems)' });
        continue;
      }
      if (!dockerUsed) {
        skipped.push({ system: sys, why: 'not measured in the scenarios asked for (overlay, drop-flood: berth only)' });
        continue;
      }
      const which = (await tryRun('sh', ['-c', 'command -v dockerd'])).stdout.trim();
      if (!which) {
        skipped.push({ system: sys, why: 'dockerd is not installed (scripts/bench-tools.sh installs docker.io)' });
        progress(`SKIPPING ${sys}: dockerd is not installed`);
        continue;
      }
      progress(`building ${sys} (dockerd 20.10, userland proxy ${proxy ? 'on, as shipped' : 'off'}, in ${PREFIX}${proxy ? 'd' : 'dn'}host)`);
      let w: DockerWorld | undefined;
      try {
        await DockerWorld.build(topo, sys, { userlandProxy: proxy }, (x) => dockers.push((w = x)));
      } catch (e) {
        const why = `dockerd did not start: ${(e as Error).message.slice(0, 400)}`;
        progress(`SKIPPING ${sys}: ${why}`);
        skipped.push({ system: sys, why });
        if (w) {
          dockers.splice(dockers.indexOf(w), 1);
          await w.destroy().catch(() => undefined);
        }
      }
    }
    const m = await meta(berths);
    for (const b of berths) progress(`${b.name}: ${JSON.stringify((m.berth as Record<string, unknown>)[b.name])}`);

    const want = (id: string) => !o.only || o.only.has(id);
    const ctls: Ctl[] = [
      ...berths.map((b): Ctl => ({
        name: b.name,
        createNote: 'API call',
        create: (name, publish) => b.createSandbox(name, publish),
        remove: (h) => b.removeSandbox((h as { id: string }).id),
        stats: () => b.stats(),
      })),
      ...dockers.map((d): Ctl => ({
        name: d.name,
        createNote: 'whole `docker run -d`, container start included',
        create: (name, publish) => d.createContainer(name, publish),
        remove: (h) => d.removeContainer(h as ContainerInfo),
        stats: () => d.stats(),
      })),
    ];
    const scenarios: ScenarioResult[] = [];

    // The control-plane scenarios run first, on an idle host with an empty conntrack table
    // (after the traffic scenarios the iptables datapath's conntrack flushes take longer).
    if (want('attach')) scenarios.push(await attachSequential(ctls, o));
    if (want('concurrent-attach')) scenarios.push(await attachConcurrent(ctls, o));
    if (want('publish-scale')) scenarios.push(await publishScale(ctls, o));

    // Traffic: the benchmark pairs.
    const peers: Peer[] = [];
    for (const b of berths) {
      const [s1, s2] = await b.makePair();
      peers.push({ name: b.name, client: s1.netns, server: { ns: s2.netns, ip: s2.ip }, host: b.path('host'), ext: b.path('ext'), up: BERTH.up, extIp: BERTH.ext, cpu: () => treeCpuMs([b.pid!]) });
    }
    for (const d of dockers) {
      const [c1, c2] = await d.makePair([PORTS.iperf, PORTS.sockperf, PORTS.http]);
      peers.push({ name: d.name, client: c1.netns, server: { ns: c2.netns, ip: c2.ip }, host: d.path('host'), ext: d.path('ext'), up: DOCKER.up, extIp: DOCKER.ext, cpu: () => treeCpuMs([d.dockerdPid], d.dir) });
    }
    if (limit) for (const short of ['lv2', 'lc2', 'lext']) await servers.startAll(short, limit.path(short));
    for (const p of peers) {
      await servers.startAll(`${p.name}/server`, p.server.ns);
      await servers.startAll(`${p.name}/ext`, p.ext);
    }
    const T = o.seconds;
    const R = o.runs;
    // latency and connection rate settle faster than throughput: half the time (at least 1 s)
    const TL = Math.max(1, Math.round(T / 2));

    type Path = { ns: string; ip: string };
    const traffic: { id: string; title: string; method: string; limits: [string, Path][]; peer: (p: Peer) => Path; figures: ('tput' | 'lat' | 'rate')[] }[] = [
      {
        id: 'c2c', title: 'Same host, container to container',
        method: "limit-veth: two namespaces joined by one veth pair; limit-bridge: two namespaces on a Linux bridge, no netfilter; berth-*: two sandboxes on berth's default bridge network, made through the API; docker*: two containers on docker0",
        limits: limit ? [['limit-veth', { ns: limit.path('lv1'), ip: LIMIT.v2 }], ['limit-bridge', { ns: limit.path('lc1'), ip: LIMIT.c2 }]] : [],
        peer: (p) => ({ ns: p.client, ip: p.server.ip }), figures: ['tput', 'lat', 'rate'],
      },
      {
        id: 'published', title: 'Published port from the external namespace',
        method: "limit-routed: ext → host (forwarding, no NAT, no filter) → bridge → the server at its own address; berth-*: ext → host uplink address:published port → sandbox; docker: the same through Docker's DNAT rule (the userland proxy does not see this path)",
        limits: limit ? [['limit-routed', { ns: limit.path('lext'), ip: LIMIT.c2 }]] : [],
        peer: (p) => ({ ns: p.ext, ip: p.up }), figures: ['tput', 'lat', 'rate'],
      },
      {
        id: 'masquerade', title: 'Outbound masquerade, container to external namespace',
        method: 'limit-routed: container → bridge → host (forwarding, no NAT) → ext, ext routes back; others: container → bridge → host (MASQUERADE to the uplink address) → ext',
        limits: limit ? [['limit-routed', { ns: limit.path('lc1'), ip: LIMIT.ext }]] : [],
        peer: (p) => ({ ns: p.client, ip: p.extIp }), figures: ['tput', 'rate'],
      },
      {
        id: 'hairpin', title: 'Hairpin: container → host address:published port → another container',
        method: "limit-bridge: container to container on the bridge, no NAT; berth-*: client sandbox → host uplink address:published port (DNAT back onto the bridge); docker: client container → host address:published port, which Docker (userland proxy on) leaves to docker-proxy",
        limits: limit ? [['limit-bridge', { ns: limit.path('lc1'), ip: LIMIT.c2 }]] : [],
        peer: (p) => ({ ns: p.client, ip: p.up }), figures: ['tput', 'lat', 'rate'],
      },
      {
        id: 'localhost', title: 'Host → 127.0.0.1:published port',
        method: "limit-routed: the host namespace → the server at its own address, no NAT; berth-*: the host namespace → 127.0.0.1:published port (OUTPUT DNAT, route_localnet on berth's bridges); docker: 127.0.0.1 is docker-proxy's (userland proxy on)",
        limits: limit ? [['limit-routed', { ns: limit.path('lhost'), ip: LIMIT.c2 }]] : [],
        peer: (p) => ({ ns: p.host, ip: '127.0.0.1' }), figures: ['tput', 'lat', 'rate'],
      },
    ];
    const reachable = async (path: Path): Promise<string | null> => {
      try {
        for (const port of [PORTS.iperf, PORTS.sockperf, PORTS.http]) await waitPort(path.ns, path.ip, port);
        return null;
      } catch (e) {
        return (e as Error).message.split('\n')[0]!.slice(0, 200);
      }
    };
    for (const sc of traffic) {
      if (!want(sc.id)) continue;
      const notMeasured: { system: string; why: string }[] = [];
      const limits: [string, Path][] = [];
      for (const [n, p] of sc.limits) {
        const why = await reachable(p);
        if (why) throw new Error(`${sc.id}: the limit path ${n} does not answer: ${why}`);
        limits.push([n, p]);
      }
      const ps: [Peer, Path][] = [];
      for (const p of peers) {
        const path = sc.peer(p);
        const why = await reachable(path);
        if (why) {
          progress(`${sc.id}: SKIPPING ${p.name}: ${why}`);
          notMeasured.push({ system: p.name, why: `the path does not answer: ${why}` });
        } else ps.push([p, path]);
      }
      const lim = limits[0]?.[0] ?? '';
      const sys = (f: typeof tput, t: number): SystemRun[] => [...limits.map(([n, p]) => f(n, p.ns, p.ip, t)), ...ps.map(([p, path]) => f(p.name, path.ns, path.ip, t, p.cpu))];
      const figures: FigureResult[] = [];
      if (sc.figures.includes('tput')) figures.push(await figure(sc.id, 'TCP throughput', 'Gbit/s', true, lim, sys(tput, T), R, 'GB', notMeasured));
      if (sc.figures.includes('lat')) figures.push(await figure(sc.id, 'TCP latency p50 (half RTT)', 'µs', false, lim, sys(lat, TL), R, 'round trip', notMeasured));
      if (sc.figures.includes('rate')) figures.push(await figure(sc.id, 'TCP connection rate', 'conn/s', true, lim, sys(rate, TL), R, 'connection', notMeasured));
      scenarios.push({ id: sc.id, title: sc.title, method: sc.method, figures, notMeasured: [...notMeasured, ...skipped] });
    }
    await servers.stopAll();

    if (want('overlay')) scenarios.push(await overlayScenario(topo, overlays, o));
    if (want('drop-flood')) scenarios.push(await dropFlood(topo, berths, peers, o));

    if (want('ports-10k')) scenarios.push(await manyPorts(berths, dockers, limit, o, TL));
    if (want('policy-scale')) scenarios.push(await policyScale(berths, o, TL));

    // Output
    if (interrupted) throw new Error('interrupted');
    const date = new Date().toISOString();
    m.loadavgAtEnd = (await readFile('/proc/loadavg', 'utf8')).trim();
    const result = { meta: m, command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), mode: o.quick ? 'quick' : 'full', runs: R, seconds: T, systems: o.systems, notMeasured: skipped, scenarios };
    await mkdir(o.out, { recursive: true });
    const stamp = date.replace(/[:.]/g, '-');
    const jsonPath = join(o.out, `${stamp}.json`);
    await writeFile(jsonPath, JSON.stringify(result, null, 2) + '\n');
    let nsvg = 0;
    for (const sc of scenarios) {
      for (const [i, f] of sc.figures.entries()) {
        const bars: Bar[] = f.systems.map((s) => ({ label: s.system, median: s.summary.median, min: s.summary.min, max: s.summary.max, ratio: s.ratio }));
        bars.push(...f.notMeasured.filter((n) => !f.systems.some((s) => s.system === n.system) && n.why !== 'not asked for (--systems)').map((n) => ({ label: n.system, median: NaN, min: NaN, max: NaN, note: 'not measured' })));
        await writeFile(join(o.out, `${stamp}-${sc.id}-${i + 1}.svg`), barChart(`${sc.title}: ${f.figure}`, f.unit, bars, { higherIsBetter: f.higherIsBetter, ...(sc.id === 'policy-scale' ? { ratioLabel: 'no policy' } : sc.id === 'drop-flood' ? { ratioLabel: f.unit === 'ns' ? 'sender only' : 'quiet' } : {}) }));
        nsvg++;
      }
    }
    progress(`wrote ${jsonPath} and ${nsvg} SVG charts`);
    process.stdout.write('\n' + markdown(result.meta, scenarios) + '\n');
    return 0;
  } catch (e) {
    for (const b of berths) if (b.daemon) process.stderr.write(`bench: ${b.name}: berthd ${b.daemon.running ? 'is running' : `exited (${b.daemon.proc.exitCode ?? b.daemon.proc.signalCode})`}; its last log lines:\n${b.daemon.logs.split('\n').slice(-10).join('\n')}\n`);
    for (const d of dockers) process.stderr.write(`bench: ${d.name}: dockerd's last log lines:\n${d.logs.split('\n').slice(-10).join('\n')}\n`);
    throw e;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A system that failed in one scenario: said on stderr and in the results, and the run goes on. */
function failed(scenario: string, system: string, e: unknown): { system: string; why: string } {
  // a command's own error output says why; its (long) command line does not
  const err = e as Error & { stderr?: string; command?: string; exitCode?: number | null };
  const text = err.stderr?.trim() ? `'${(err.command ?? '').slice(0, 60)}…' exited ${err.exitCode ?? 'on a signal'}: ${err.stderr.trim()}` : err.message;
  const why = `failed: ${text.split('\n').slice(0, 3).join(' ').slice(0, 400)}`;
  progress(`${scenario}: ${system} ${why}`);
  return { system, why };
}

/** A figure of control-plane samples (ms) with p50/p99, one row per system; @baseline names the row others are compared to. */
function msFigure(name: string, rows: { system: string; samples: number[]; extra?: Record<string, unknown> }[], unit = 'ms', baseline = ''): FigureResult {
  const base = baseline ? summarize(rows.find((r) => r.system === baseline)?.samples ?? []).median : NaN;
  return {
    figure: name, unit, higherIsBetter: false, limit: baseline,
    systems: rows.map((r) => {
      const summary = summarize(r.samples);
      return { system: r.system, samples: r.samples, summary, ratio: null, deltaToLimit: Number.isFinite(base) ? summary.median - base : null, extra: [{ p50: percentile(r.samples, 50), p99: percentile(r.samples, 99), ...r.extra }] };
    }),
    notMeasured: skipped,
  };
}

async function attachSequential(ctls: Ctl[], o: Opts): Promise<ScenarioResult> {
  const create: { system: string; samples: number[] }[] = [];
  const remove: { system: string; samples: number[] }[] = [];
  const notMeasured: { system: string; why: string }[] = [];
  for (const c of ctls) try {
    progress(`attach · ${c.name}: ${o.attach} sequential creates with one published port (${c.createNote}), then removes`);
    const cr: number[] = [];
    const rm: number[] = [];
    const made: unknown[] = [];
    for (let i = 0; i < o.attach; i++) {
      const t = performance.now();
      made.push(await c.create(`attach-${i}`, [`${22000 + i}:80`]));
      cr.push(performance.now() - t);
    }
    for (const h of made) {
      const t = performance.now();
      await c.remove(h);
      rm.push(performance.now() - t);
    }
    progress(`attach · ${c.name}: create p50 ${percentile(cr, 50).toFixed(1)} ms p99 ${percentile(cr, 99).toFixed(1)} ms; remove p50 ${percentile(rm, 50).toFixed(1)} ms`);
    create.push({ system: c.name, samples: cr });
    remove.push({ system: c.name, samples: rm });
  } catch (e) {
    notMeasured.push(failed('attach', c.name, e));
  }
  return {
    id: 'attach', title: 'Attach latency, sequential', notMeasured: [...notMeasured, ...skipped],
    method: `${o.attach} creates in a row, each with one published port, timed at the client, then a forced remove of each. berth-*: POST /v1/sandboxes (create + connect to the default bridge + publish, command 'sleep infinity'); docker*: the whole 'docker run -d -p PORT:80 IMAGE sleep' (container start included, so it is an upper bound of Docker's network share) and 'docker rm -f'. No limit: there is nothing to compare with`,
    figures: [msFigure('create + publish', create), msFigure('remove', remove)],
  };
}

async function attachConcurrent(ctls: Ctl[], o: Opts): Promise<ScenarioResult> {
  const lat: { system: string; samples: number[]; extra?: Record<string, unknown> }[] = [];
  const rmLat: { system: string; samples: number[] }[] = [];
  const notMeasured: { system: string; why: string }[] = [];
  for (const c of ctls) try {
    progress(`concurrent-attach · ${c.name}: ${o.concurrent} creates at once, each with one published port`);
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: o.concurrent }, async (_, i) => {
      const t = performance.now();
      const h = await c.create(`conc-${i}`, [`${23000 + i}:80`]);
      return { h, ms: performance.now() - t };
    }));
    const wall = performance.now() - start;
    const t1 = performance.now();
    const rms = await Promise.all(results.map(async ({ h }) => {
      const t = performance.now();
      await c.remove(h);
      return performance.now() - t;
    }));
    const rmWall = performance.now() - t1;
    const samples = results.map((r) => r.ms);
    progress(`concurrent-attach · ${c.name}: p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms, all ${o.concurrent} in ${wall.toFixed(0)} ms; removes all in ${rmWall.toFixed(0)} ms`);
    lat.push({ system: c.name, samples, extra: { wallMs: wall, perSecond: (o.concurrent * 1000) / wall } });
    rmLat.push({ system: c.name, samples: rms });
  } catch (e) {
    notMeasured.push(failed('concurrent-attach', c.name, e));
  }
  return {
    id: 'concurrent-attach', title: `Attach latency, ${o.concurrent} at once`, notMeasured: [...notMeasured, ...skipped],
    method: `${o.concurrent} creates started together (each with one published port), each timed from its own start to its answer; the wall time for all of them is in extra. berth serialises its mutations, so the p99 is close to the wall time. docker*: whole 'docker run -d'`,
    figures: [msFigure('create + publish (each)', lat), msFigure('remove (each)', rmLat)],
  };
}

async function publishScale(ctls: Ctl[], o: Opts): Promise<ScenarioResult> {
  const rows = new Map<string, { create: number[]; remove: number[]; procs: number[]; rss: number[]; pss: number[]; detail: unknown[] }>();
  const variantsOf = (c: Ctl): [string, string[]][] => {
    if (c.name.startsWith('docker')) {
      const n = o.dockerPorts;
      return [['no ports', []], [`${n.toLocaleString('en')}-port range`, [`20000-${20000 + n - 1}:20000-${20000 + n - 1}`]]];
    }
    return [
      ['no ports', []],
      ['1,000-port range', ['20000-20999:20000-20999']],
      ['1,000 single ports', Array.from({ length: 1000 }, (_, i) => `${21000 + i}:${1000 + i}`)],
    ];
  };
  const notMeasured: { system: string; why: string }[] = [];
  for (const c of ctls) try {
    const variants = variantsOf(c);
    for (let i = 0; i < o.scaleRuns; i++) {
      for (const [v, publish] of i % 2 ? [...variants].reverse() : variants) {
        const key = `${c.name}, ${v}`;
        if (!rows.has(key)) rows.set(key, { create: [], remove: [], procs: [], rss: [], pss: [], detail: [] });
        const row = rows.get(key)!;
        const before = await c.stats();
        let t = performance.now();
        const h = await c.create(`scale-${i}`, publish);
        const tp = performance.now() - t;
        // a short-lived helper (iptables-save of berthd's drift check) can be caught in the tree: take the fewest of three looks
        let after = await c.stats();
        for (let k = 0; k < 2; k++) {
          await new Promise((r) => setTimeout(r, 250));
          const again = await c.stats();
          if (again.processes < after.processes) after = again;
        }
        t = performance.now();
        await c.remove(h);
        const tr = performance.now() - t;
        const removed = await c.stats();
        row.create.push(tp);
        row.remove.push(tr);
        row.procs.push(after.processes - before.processes);
        row.rss.push((after.rssKb - before.rssKb) / 1024);
        row.pss.push((after.pssKb - before.pssKb) / 1024);
        row.detail.push({ run: i + 1, before, afterPublish: after, afterRemove: removed });
        progress(`publish-scale · ${key} · run ${i + 1}/${o.scaleRuns}: create ${tp.toFixed(0)} ms, remove ${tr.toFixed(0)} ms; processes ${before.processes} → ${after.processes} → ${removed.processes}; RSS ${(before.rssKb / 1024).toFixed(0)} → ${(after.rssKb / 1024).toFixed(0)} MB, PSS ${(before.pssKb / 1024).toFixed(0)} → ${(after.pssKb / 1024).toFixed(0)} MB`);
      }
    }
  } catch (e) {
    notMeasured.push(failed('publish-scale', c.name, e));
  }
  const fig = (name: string, k: 'create' | 'remove' | 'procs' | 'rss' | 'pss', unit: string): FigureResult => {
    const systems: SystemResult[] = [];
    for (const [key, r] of rows) {
      const base = rows.get(`${key.split(', ')[0]}, no ports`);
      const summary = summarize(r[k]);
      systems.push({ system: key, samples: r[k], summary, ratio: null, deltaToLimit: key.endsWith('no ports') || !base ? null : summary.median - summarize(base[k]).median });
    }
    return { figure: name, unit, higherIsBetter: false, limit: 'no ports', systems, notMeasured: skipped };
  };
  const dockerNote = o.dockerPorts < 1000 ? ` Docker publishes a ${o.dockerPorts}-port range, not 1,000, to keep its run bounded (it starts two docker-proxy processes per port, IPv4 and IPv6): scale its figures by ${(1000 / o.dockerPorts).toFixed(1)} for 1,000 ports, knowing that is an extrapolation (use --docker-ports 1000 to measure it).` : '';
  return {
    id: 'publish-scale', title: 'Publish scale: create/remove with no ports, a port range, single ports', notMeasured: [...notMeasured, ...skipped],
    method: `time of the create (berth: API; docker: docker run -d) with the publish list and of the remove, at the client; the publish cost is the difference to "no ports". Processes, RSS and PSS are the system's process tree (berthd and its sandboxes' commands; dockerd, containerd, docker-proxy, the shims and containers) after the publish minus before; "no ports" shows what a sandbox or container itself adds.${dockerNote}`,
    figures: [fig('create (publish)', 'create', 'ms'), fig('remove', 'remove', 'ms'), fig('processes added', 'procs', 'processes'), fig('RSS added', 'rss', 'MB'), fig('PSS added', 'pss', 'MB')],
    rows: Object.fromEntries([...rows].map(([k, r]) => [k, r.detail])),
  };
}

/** Connection rate to the first and the last of many published ports (all to one nginx), against the routed limit. */
async function manyPorts(berths: BerthWorld[], dockers: DockerWorld[], limit: LimitWorld | undefined, o: Opts, TL: number): Promise<ScenarioResult> {
  const servers = new Servers();
  const runs: SystemRun[] = [];
  const made: (() => Promise<void>)[] = [];
  const notMeasured: { system: string; why: string }[] = [];
  const createMs: { system: string; samples: number[] }[] = [];
  const removeMs: { system: string; samples: number[] }[] = [];
  try {
    if (limit) {
      await servers.startNginx('limit', limit.path('lc2'));
      await waitPort(limit.path('lext'), LIMIT.c2, PORTS.http);
      runs.push(rate('limit-routed', limit.path('lext'), LIMIT.c2, TL));
    }
    for (const b of berths) try {
      const n = o.manyPorts;
      progress(`ports-10k · ${b.name}: a sandbox with ${n.toLocaleString('en')} single published ports (30000.. → 8080)`);
      const t = performance.now();
      const sb = await b.createSandbox('many', Array.from({ length: n }, (_, i) => `${30000 + i}:${PORTS.http}`));
      createMs.push({ system: b.name, samples: [performance.now() - t] });
      made.push(async () => {
        const t = performance.now();
        await b.removeSandbox(sb.id);
        removeMs.push({ system: b.name, samples: [performance.now() - t] });
      });
      await servers.startNginx(`${b.name}/many`, sb.netns);
      for (const port of [30000, 30000 + n - 1]) await waitPort(b.path('ext'), BERTH.up, port);
      runs.push(rate(`${b.name}, first port (30000)`, b.path('ext'), BERTH.up, TL, () => treeCpuMs([b.pid!]), 30000));
      runs.push(rate(`${b.name}, last port (${30000 + n - 1})`, b.path('ext'), BERTH.up, TL, () => treeCpuMs([b.pid!]), 30000 + n - 1));
    } catch (e) {
      notMeasured.push(failed('ports-10k', b.name, e));
    }
    for (const d of dockers) try {
      const n = o.dockerPorts;
      const why = d.userlandProxy
        ? `${o.manyPorts.toLocaleString('en')} would start ${2 * o.manyPorts} docker-proxy processes (about 3 MB RSS each)`
        : `dockerd adds each port with several iptables calls, minutes for ${o.manyPorts.toLocaleString('en')}`;
      progress(`ports-10k · ${d.name}: a container with ${n} single published ports (30000.. → 8080); not ${o.manyPorts.toLocaleString('en')}: ${why}`);
      notMeasured.push({ system: `${d.name} at ${o.manyPorts.toLocaleString('en')} ports`, why: `measured at ${n} ports only (--docker-ports): ${why}` });
      const t = performance.now();
      const c = await d.inspect(await d.createContainer('many', Array.from({ length: n }, (_, i) => `${30000 + i}:${PORTS.http}`)));
      createMs.push({ system: `${d.name} (${n} ports)`, samples: [performance.now() - t] });
      made.push(async () => {
        const t = performance.now();
        await d.removeContainer(c);
        removeMs.push({ system: `${d.name} (${n} ports)`, samples: [performance.now() - t] });
      });
      await clientSysctls(c.netns);
      await servers.startNginx(`${d.name}/many`, c.netns);
      for (const port of [30000, 30000 + n - 1]) await waitPort(d.path('ext'), DOCKER.up, port);
      runs.push(rate(`${d.name}, first port (30000)`, d.path('ext'), DOCKER.up, TL, () => treeCpuMs([d.dockerdPid], d.dir), 30000));
      runs.push(rate(`${d.name}, last of ${n} (${30000 + n - 1})`, d.path('ext'), DOCKER.up, TL, () => treeCpuMs([d.dockerdPid], d.dir), 30000 + n - 1));
    } catch (e) {
      notMeasured.push(failed('ports-10k', d.name, e));
    }
    const f = await figure('ports-10k', 'TCP connection rate', 'conn/s', true, limit ? 'limit-routed' : '', runs, o.runs, 'connection', notMeasured);
    await servers.stopAll();
    for (const undo of made.splice(0)) await undo();
    return {
      id: 'ports-10k', title: `Connection rate to the first and the last of ${o.manyPorts.toLocaleString('en')} published ports`, notMeasured: [...notMeasured, ...skipped],
      method: `one sandbox (container) with ${o.manyPorts.toLocaleString('en')} single published ports 30000.. all to its nginx on ${PORTS.http} (Docker: ${o.dockerPorts}); wrk from ext to the uplink address at the first and at the last port; limit-routed: ext to the server at its own address. Flat means the last port costs what the first does`,
      figures: [f, msFigure('create with all ports published', createMs), msFigure('remove with all ports published', removeMs)],
    };
  } finally {
    await servers.stopAll();
    for (const undo of made) await undo().catch((e: unknown) => progress(`ports-10k: cleanup: ${(e as Error).message}`));
  }
}

/** icc=false network with T targets × L linkers link pairs: connection rate against an icc=true network, and one link added. */
async function policyScale(berths: BerthWorld[], o: Opts, TL: number): Promise<ScenarioResult> {
  const side = Math.max(1, Math.round(Math.sqrt(o.policyPairs)));
  const targets = side;
  const linkers = Math.max(1, Math.round(o.policyPairs / side));
  const pairs = targets * linkers;
  const runs: SystemRun[] = [];
  const update: { system: string; samples: number[] }[] = [];
  const servers = new Servers();
  const notMeasured: { system: string; why: string }[] = [{ system: 'docker', why: "not measured: Docker's links with icc=false need a dockerd started with --icc=false (legacy links on the default bridge); not built" }];
  try {
    for (const b of berths) try {
      await b.createNetwork('pol', { icc: 'false' });
      await b.createNetwork('open');
      // policy-scale runs last: its hundreds of sandboxes are left to BerthWorld.destroy(), which stops berthd and removes
      // them with its namespaces (one API call each would take minutes with the iptables datapath)
      const o1 = await b.createSandbox('open-1', [], { network: 'open' });
      const o2 = await b.createSandbox('open-2', [], { network: 'open', expose: [String(PORTS.http)] });
      for (const s of [o1]) await clientSysctls(s.netns);
      await servers.startNginx(`${b.name}/open-2`, o2.netns);
      progress(`policy-scale · ${b.name}: ${targets} targets (expose ${PORTS.http}) on an icc=false network`);
      const ts = [];
      for (let i = 0; i < targets; i++) ts.push(await b.createSandbox(`pt${i}`, [], { network: 'pol', expose: [String(PORTS.http)] }));
      // one link added with only that pair in place (well: the targets exist, no links yet)
      const probe = async (): Promise<number> => {
        const t = performance.now();
        const p = await b.createSandbox(`probe-${Math.random().toString(36).slice(2, 8)}`, [], { network: 'pol', links: ['pt0'] });
        const ms = performance.now() - t;
        await b.removeSandbox(p.id);
        return ms;
      };
      const probes0: number[] = [];
      for (let i = 0; i < 3; i++) probes0.push(await probe());
      progress(`policy-scale · ${b.name}: ${linkers} linkers, each linked to all ${targets} targets (${pairs.toLocaleString('en')} pairs)`);
      let last;
      const t0 = performance.now();
      for (let i = 0; i < linkers; i++) {
        last = await b.createSandbox(`pl${i}`, [], { network: 'pol', links: ts.map((_, k) => `pt${k}`) });
        if ((i + 1) % 10 === 0) progress(`policy-scale · ${b.name}: ${i + 1}/${linkers} linkers (${((i + 1) * targets).toLocaleString('en')} pairs), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      const probesN: number[] = [];
      for (let i = 0; i < 3; i++) probesN.push(await probe());
      update.push({ system: `${b.name}, 0 pairs`, samples: probes0 }, { system: `${b.name}, ${pairs.toLocaleString('en')} pairs`, samples: probesN });
      const target = ts[ts.length - 1]!;
      await clientSysctls(last!.netns);
      await servers.startNginx(`${b.name}/pt-last`, target.netns);
      await waitPort(o1.netns, o2.ip, PORTS.http);
      await waitPort(last!.netns, target.ip, PORTS.http);
      // the policy is real: a target cannot reach another target
      const blocked = await nsRun(ts[0]!.netns, 'bash', ['-c', `exec 3<>/dev/tcp/${target.ip}/${PORTS.http}`], 2000).then(() => false, () => true);
      if (!blocked) throw new Error(`policy-scale: ${b.name}: pt0 reached pt${targets - 1} on the icc=false network without a link; the measurement would not be of a policy`);
      runs.push(rate(`${b.name}, no policy (icc=true)`, o1.netns, o2.ip, TL, () => treeCpuMs([b.pid!])));
      runs.push(rate(`${b.name}, ${pairs.toLocaleString('en')} link pairs (last linker → last target)`, last!.netns, target.ip, TL, () => treeCpuMs([b.pid!])));
    } catch (e) {
      notMeasured.push(failed('policy-scale', b.name, e));
    }
    const f = await figure('policy-scale', 'TCP connection rate', 'conn/s', true, '', runs, o.runs, 'connection', notMeasured);
    // ratio to "no policy" of the same system
    for (const s of f.systems) {
      const base = f.systems.find((x) => x.system === `${s.system.split(', ')[0]}, no policy (icc=true)`);
      if (base && base !== s) s.ratio = s.summary.median / base.summary.median;
    }
    return {
      id: 'policy-scale', title: `Policy scale: ${pairs.toLocaleString('en')} link pairs on an icc=false network`,
      notMeasured: [...notMeasured, ...skipped],
      method: `an icc=false network with ${targets} targets (each exposing ${PORTS.http}) and ${linkers} linkers each linked to every target (${pairs.toLocaleString('en')} pairs, one accept rule each); wrk from the last linker to the last target, against two sandboxes on an icc=true network of the same berthd (ratio is to that). One link added: POST /v1/sandboxes with one link, timed at the client, with no pairs and with all pairs in place (iptables: that includes re-applying every rule)`,
      figures: [f, msFigure('one link added (create a sandbox with one link)', update)],
    };
  } finally {
    await servers.stopAll();
  }
}

/**
 * Overlay (issue 7): sandbox → sandbox across two berth hosts over VXLAN, against host → host on the same kind of
 * underlay (the limit) and plain kernel vxlan + bridge; the berth clusters are built here (into @overlays, which the
 * caller's cleanup destroys).
 */
async function overlayScenario(topo: ReturnType<typeof benchTopology>, overlays: OverlayWorld[], o: Opts): Promise<ScenarioResult> {
  const servers = new Servers();
  const notMeasured: { system: string; why: string }[] = [];
  const T = o.seconds;
  const TL = Math.max(1, Math.round(T / 2));
  const paths: { system: string; ns: string; ip: string; cpu?: () => Promise<number> }[] = [];
  try {
    if (o.systems.includes('limit')) {
      progress('overlay: building the plain underlay (host to host) and kernel vxlan + bridge');
      const plain = await PlainOverlayWorld.build(topo);
      await servers.startAll('overlay/limit', plain.path('h2'));
      await servers.startAll('overlay/kernel', plain.path('c2'));
      paths.push({ system: 'limit-underlay', ns: plain.path('h1'), ip: plain.h2Ip }, { system: 'kernel-vxlan', ns: plain.path('c1'), ip: plain.c2Ip });
    }
    for (const dp of BERTH_DATAPATHS) {
      if (!o.systems.includes(dp)) continue;
      progress(`overlay: building berth-${dp}: etcd, two hosts with berthd --store etcd:// --datapath ${dp}, an overlay network, a sandbox on each`);
      let w: OverlayWorld | undefined;
      try {
        w = await OverlayWorld.build(topo, dp, (x) => overlays.push(x));
        const [, o2] = w.sandboxes;
        await servers.startAll(`overlay/${w.name}`, o2!.netns);
        const ww = w;
        paths.push({ system: `${w.name} overlay`, ns: w.sandboxes[0]!.netns, ip: o2!.ip, cpu: () => treeCpuMs(ww.pids()) });
      } catch (e) {
        notMeasured.push(failed('overlay', `berth-${dp} overlay`, e));
        const x = overlays.find((y) => y.datapath === dp);
        if (x) process.stderr.write(`bench: overlay berth-${dp}: berthd logs:\n${x.hosts.map((h) => h.daemon?.logs.split('\n').slice(-8).join('\n') ?? '').join('\n')}\n`);
      }
    }
    const live: typeof paths = [];
    for (const p of paths) {
      try {
        for (const port of [PORTS.iperf, PORTS.sockperf]) await waitPort(p.ns, p.ip, port, 15_000);
        live.push(p);
      } catch (e) {
        if (p.system === 'limit-underlay') throw new Error(`overlay: the underlay limit does not answer: ${(e as Error).message}`);
        notMeasured.push(failed('overlay', p.system, e));
      }
    }
    const lim = live.some((p) => p.system === 'limit-underlay') ? 'limit-underlay' : '';
    const f1 = await figure('overlay', 'TCP throughput', 'Gbit/s', true, lim, live.map((p) => tput(p.system, p.ns, p.ip, T, p.cpu)), o.runs, 'GB', notMeasured);
    const f2 = await figure('overlay', 'TCP latency p50 (half RTT)', 'µs', false, lim, live.map((p) => lat(p.system, p.ns, p.ip, TL, p.cpu)), o.runs, 'round trip', notMeasured);
    return {
      id: 'overlay', title: 'Overlay: sandbox to sandbox across two hosts (VXLAN)', notMeasured: [...notMeasured, ...skipped],
      method: `two "host" namespaces joined by an underlay (a Linux bridge in its own namespace, veths, MTU 1500), etcd in its own namespace; berth-*: berthd on each host with --store etcd:// and --advertise-addr, each with its own private bpffs, an overlay network (berth network create -d overlay --subnet ${OVL.subnet}), one sandbox per host, client on host 1, servers on host 2; limit-underlay: host 1 → host 2 on the underlay addresses (a bare underlay of the same construction, no berth); kernel-vxlan: Linux vxlan devices (VNI ${OVL.vni}, static flood entry to the other host) on a bridge with a veth to a container namespace per host, MTU 1450; CPU of the system's own processes is both berthds'`,
      figures: [f1, f2],
    };
  } finally {
    await servers.stopAll();
  }
}

/** Sum of the datapath's drop counters (GET /v1/datapath, what `berth datapath --format json` shows), or null when it has none. */
async function dropCount(b: BerthWorld): Promise<number | null> {
  const s = await b.api.call<{ kind: string; detail: { drops?: Record<string, { packets: number }> } }>('GET', '/v1/datapath');
  const d = s.detail?.drops;
  if (!d) return null;
  return Object.values(d).reduce((n, v) => n + Number(v.packets ?? 0), 0);
}

/**
 * Drop flood (issue 9): container ↔ container TCP throughput and latency on berth's default bridge network, quiet and
 * while a sandbox on an icc=false network floods another sandbox it may not reach with UDP; ratio flood / quiet.
 */
/** drop-flood's offered load: low enough that one Node sender keeps it on this machine, with or without the datapath's drop in its softirq. */
const FLOOD_PPS = 100_000;

async function dropFlood(topo: ReturnType<typeof benchTopology>, berths: BerthWorld[], peers: Peer[], o: Opts): Promise<ScenarioResult> {
  const servers = new Servers();
  const flooder = new Flooder();
  const notMeasured: { system: string; why: string }[] = [];
  const T = o.seconds;
  const TL = Math.max(1, Math.round(T / 2));
  const tp: SystemRun[] = [];
  const lt: SystemRun[] = [];
  const cpu: SystemRun[] = [];
  const made: (() => Promise<void>)[] = [];
  try {
    // the control: the same sender into a veth whose peer is down (the kernel drops at transmit) in a namespace of its own (no datapath on its way): what the
    // sender's own CPU costs the measurement, apart from the datapath's drops
    let ctl: string | undefined;
    if (berths.length) {
      await topo.addNetns('flood-ctl');
      // a veth whose peer stays down: the kernel drops what is sent to it right at the transmit (no dummy module here)
      const ipc = (...args: string[]) => run('ip', ['-n', topo.ns('flood-ctl'), ...args]);
      await ipc('link', 'add', 'fc0', 'type', 'veth', 'peer', 'name', 'fc1');
      await ipc('addr', 'add', '10.123.0.1/24', 'dev', 'fc0');
      await ipc('link', 'set', 'fc0', 'up');
      await ipc('neigh', 'add', '10.123.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'fc0', 'nud', 'permanent');
      ctl = topo.nsPath('flood-ctl');
    }
    for (const b of berths) try {
      const p = peers.find((x) => x.name === b.name)!;
      await b.createNetwork('flood', { icc: 'false' });
      made.push(() => b.removeNetwork('flood'));
      const f1 = await b.createSandbox('flood-src', [], { network: 'flood' });
      const f2 = await b.createSandbox('flood-dst', [], { network: 'flood', expose: [String(PORTS.http)] });
      made.unshift(() => b.removeSandbox(f1.id), () => b.removeSandbox(f2.id));
      await servers.startNginx(`${b.name}/flood-dst`, f2.netns);
      await servers.startAll(`${b.name}/drop-flood`, p.server.ns);
      await waitPort(p.client, p.server.ip, PORTS.iperf);
      await waitPort(p.client, p.server.ip, PORTS.sockperf);
      // the flood is of dropped packets: the source cannot reach the destination
      const blocked = await nsRun(f1.netns, 'bash', ['-c', `exec 3<>/dev/tcp/${f2.ip}/${PORTS.http}`], 2000).then(() => false, () => true);
      if (!blocked) throw new Error(`flood-src reached flood-dst on the icc=false network: its flood would not be dropped`);
      const startFlood = (control: boolean, seconds: number) => (control ? flooder.start(ctl!, '10.123.0.2', 9, seconds, FLOOD_PPS) : flooder.start(f1.netns, f2.ip, 9, seconds, FLOOD_PPS));
      const floodRun = (inner: SystemRun, seconds: number, control = false): SystemRun => ({
        ...inner,
        system: control ? `${b.name}, sender only (flood into a down veth)` : `${b.name}, under flood`,
        run: async () => {
          const d0 = await dropCount(b);
          const fl = await startFlood(control, seconds + 1);
          await new Promise((r) => setTimeout(r, 300));
          const r = await inner.run();
          const sent = await fl.done;
          const d1 = await dropCount(b);
          const dropPps = d0 !== null && d1 !== null ? (d1 - d0) / sent.seconds : null;
          progress(`drop-flood · ${b.name}${control ? ' (control)' : ''}: flood sent ${Math.round(sent.sent / sent.seconds).toLocaleString('en')} packets/s, datapath drop counters ${dropPps === null ? 'not available' : `+${Math.round(dropPps).toLocaleString('en')}/s`}`);
          return { ...r, extra: { ...r.extra, floodSentPps: sent.sent / sent.seconds, floodSendErrors: sent.errors, datapathDropPps: dropPps } };
        },
      });
      const q1 = tput(`${b.name}, quiet`, p.client, p.server.ip, T, p.cpu);
      const q2 = lat(`${b.name}, quiet`, p.client, p.server.ip, TL, p.cpu);
      tp.push(q1, floodRun(q1, T, true), floodRun(q1, T));
      lt.push(q2, floodRun(q2, TL, true), floodRun(q2, TL));
      // The flood alone, nothing else running: the machine's CPU per packet sent, into the down veth and into the datapath's drop.
      const cost = (control: boolean): SystemRun => ({
        system: control ? `${b.name}, sender only (flood into a down veth)` : `${b.name}, dropped by the datapath`,
        run: async () => {
          // The machine's CPU is read right around the flood, the drop counters (an API call) outside it.
          const d0 = await dropCount(b);
          const m0 = await machineBusyMs();
          const sent = await (await startFlood(control, T)).done;
          const m1 = await machineBusyMs();
          const d1 = await dropCount(b);
          const dropped = d0 !== null && d1 !== null ? d1 - d0 : null;
          progress(`drop-flood · ${b.name}${control ? ' (control)' : ''}: flood alone, ${Math.round(sent.sent / sent.seconds).toLocaleString('en')} packets/s, machine CPU ${(m1 - m0).toFixed(0)} ms${dropped === null ? '' : `, dropped ${dropped.toLocaleString('en')}`}`);
          return { value: ((m1 - m0) * 1e6) / Math.max(1, sent.sent), tx: sent.sent, extra: { floodSentPps: sent.sent / sent.seconds, floodSendErrors: sent.errors, datapathDropPps: dropped === null ? null : dropped / sent.seconds, machineCpuMs: m1 - m0 } };
        },
      });
      cpu.push(cost(true), cost(false));
    } catch (e) {
      notMeasured.push(failed('drop-flood', b.name, e));
    }
    const figs = [
      await figure('drop-flood', 'TCP throughput', 'Gbit/s', true, '', tp, o.runs, 'GB', notMeasured),
      await figure('drop-flood', 'TCP latency p50 (half RTT)', 'µs', false, '', lt, o.runs, 'round trip', notMeasured),
      await figure('drop-flood', 'machine CPU per flood packet, the flood alone', 'ns', false, '', cpu, o.runs, 'packet', notMeasured),
    ];
    for (const f of figs) for (const s of f.systems) {
      // Ratios to quiet; the CPU figure's to the sender alone, so its difference is what the datapath's drop costs per packet.
      const base = f.systems.find((x) => x.system === `${s.system.split(', ')[0]}, ${f.unit === 'ns' ? 'sender only (flood into a down veth)' : 'quiet'}`);
      if (base && base !== s) {
        s.ratio = s.summary.median / base.summary.median;
        s.deltaToLimit = s.summary.median - base.summary.median;
      }
    }
    return {
      id: 'drop-flood', title: 'Drop flood: allowed traffic while the datapath drops a flood', notMeasured: [...notMeasured, ...skipped],
      method: `container → container on berth's default bridge network (the c2c pair), quiet and while a sandbox on an icc=false network of the same berthd sends 64-byte UDP datagrams at ${FLOOD_PPS.toLocaleString('en')} packets/s (one Node process, node:dgram on a connected socket, paced every millisecond) to another sandbox on that network it may not reach (checked: a TCP connect to it fails); the flood starts 0.3 s before the measurement and ends about 0.7 s after it. Control ("sender only"): the same sender at the same rate into a veth whose peer is down (the kernel drops at transmit) in a namespace of its own, so its packets meet no datapath: the difference between "under flood" and "sender only" is the datapath's share, the difference between "sender only" and "quiet" is the sender's CPU. Ratio: to quiet of the same datapath. Third figure: the flood alone (no other load) for ${o.seconds} s, the machine's busy CPU time (/proc/stat) per packet sent, sender only and into the datapath's drop; ratio to the sender only of the same datapath, and its difference is the CPU the datapath spends per dropped packet (receive on the veth and the drop). The flood's send rate and the datapath's drop counters (GET /v1/datapath, what \`berth datapath --format json\` shows: the sum over drop reasons) are in each sample's extra. The sender competes for the 2 CPUs with the load tools: read the throughput ratio with that`,
      figures: figs,
    };
  } finally {
    await flooder.stop();
    await servers.stopAll();
    for (const undo of made) await undo().catch((e: unknown) => progress(`drop-flood: cleanup: ${(e as Error).message}`));
  }
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'processes') return v.toFixed(0);
  if (unit === 'Gbit/s') return v.toFixed(2);
  if (unit === 'conn/s') return v.toFixed(0);
  return v.toFixed(1);
}

function cpuCell(c: SystemResult['cpuPerTx']): string {
  if (!c || !Number.isFinite(c.machine)) return '';
  const d = c.unit === 'ms/GB' ? 0 : 1;
  return `${c.machine.toFixed(d)} ${c.unit}` + (c.daemon > 0 ? ` (${c.daemon.toFixed(d)} in its own processes)` : '');
}

function markdown(meta: Record<string, unknown>, scenarios: ScenarioResult[]): string {
  const lines = [
    `berth bench, ${String(meta.date)}, load average at start ${String(meta.loadavgAtStart).split(' ').slice(0, 3).join(' ')}, kernel ${String(meta.kernel)}, ${String(meta.cpu)} (${String(meta.cpus)} CPUs), commit ${String(meta.gitCommit).slice(0, 12)}, node ${String(meta.node)}`,
    '',
    '| scenario | figure | system | median | min–max | vs limit | CPU per transaction (machine) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const sc of scenarios) {
    for (const f of sc.figures) {
      for (const s of f.systems) {
        const e = s.extra?.[0] as { p50?: number; p99?: number; wallMs?: number } | undefined;
        if ((sc.id === 'attach' || sc.id === 'concurrent-attach' || f.figure.startsWith('one link') || f.figure.startsWith('create with all') || f.figure.startsWith('remove with all')) && e?.p50 !== undefined) {
          const wall = e.wallMs !== undefined ? `; all in ${e.wallMs.toFixed(0)} ms` : '';
          lines.push(`| ${sc.id} | ${f.figure} (${f.unit}) | ${s.system} | p50 ${num(e.p50, f.unit)}, p99 ${num(e.p99!, f.unit)}${wall} | ${num(s.summary.min, f.unit)}–${num(s.summary.max, f.unit)} | — | |`);
          continue;
        }
        let vs = '—';
        if (sc.id === 'publish-scale') vs = s.deltaToLimit !== null ? `${s.deltaToLimit >= 0 ? '+' : ''}${num(s.deltaToLimit, f.unit)} ${f.unit} over no ports` : 'baseline';
        else if (s.system === f.limit) vs = 'limit';
        else if (s.ratio !== null) vs = `${s.ratio.toFixed(2)}×` + ((f.unit === 'µs' || f.unit === 'ns') && s.deltaToLimit !== null ? ` (${s.deltaToLimit >= 0 ? '+' : ''}${s.deltaToLimit.toFixed(1)} ${f.unit})` : '') + (sc.id === 'policy-scale' ? ' of no policy' : sc.id === 'drop-flood' ? (f.unit === 'ns' ? ' of the sender alone' : ' of quiet') : '');
        const errs = (s.extra as { errors?: number }[] | undefined)?.reduce((n, x) => n + (x.errors ?? 0), 0);
        const errNote = errs ? ` (${errs} wrk errors)` : '';
        // drop-flood: the flood's send rate and the datapath's drops per second (medians over the samples)
        const fl = (s.extra as { floodSentPps?: number; datapathDropPps?: number | null }[] | undefined)?.filter((x) => x.floodSentPps !== undefined) ?? [];
        const k = (v: number) => `${Math.round(v / 1000).toLocaleString('en')}k/s`;
        const floodNote = fl.length ? `; flood ${k(summarize(fl.map((x) => x.floodSentPps!)).median)} sent, ${fl.some((x) => x.datapathDropPps === null || x.datapathDropPps === undefined) ? 'drops not counted' : `${k(summarize(fl.map((x) => x.datapathDropPps!)).median)} dropped by the datapath`}` : '';
        // drop-flood: under flood against the same sender whose packets meet no datapath, the drops' own share
        const alone = sc.id === 'drop-flood' && s.system.endsWith(', under flood') ? f.systems.find((x) => x.system === s.system.replace(', under flood', ', sender only (flood into a down veth)')) : undefined;
        const aloneNote = alone ? `; ${(s.summary.median / alone.summary.median).toFixed(2)}× of the sender only` : '';
        lines.push(`| ${sc.id} | ${f.figure} (${f.unit}) | ${s.system} | ${num(s.summary.median, f.unit)}${errNote} | ${num(s.summary.min, f.unit)}–${num(s.summary.max, f.unit)} | ${vs}${aloneNote}${floodNote} | ${cpuCell(s.cpuPerTx)} |`);
      }
    }
  }
  const nm = new Map<string, string>();
  for (const sc of scenarios) for (const n of sc.notMeasured) if (!nm.has(n.system)) nm.set(n.system, `${n.why}${skipped.includes(n) ? '' : ` (${sc.id})`}`);
  if (nm.size) {
    lines.push('', 'Not measured:');
    for (const [s, why] of nm) lines.push(`- ${s}: ${why}`);
  }
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
