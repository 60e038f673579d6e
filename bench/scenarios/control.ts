/** The control-plane scenarios: attach latency (sequential and concurrent) and publish scale. */
import { percentile, summarize } from '../lib/stats.js';
import type { TreeStats } from '../lib/procs.js';
import type { Opts } from '../lib/options.js';
import type { BerthWorld } from '../lib/world.js';
import type { ContainerInfo, DockerWorld } from '../lib/docker.js';
import type { PodmanWorld } from '../lib/podman.js';
import { failed, msFigure, progress, skipped, type FigureResult, type ScenarioResult, type SystemResult } from '../lib/figure.js';

/** A system under test in the control-plane scenarios. */
export interface Ctl {
  name: string;
  /** what the create time includes */
  createNote: string;
  create: (name: string, publish: string[]) => Promise<unknown>;
  /** resolves with berthd's share of the remove by phase (berth only: its Server-Timing header) */
  remove: (h: unknown) => Promise<Record<string, number> | void>;
  /** berthd's share of a create by phase, from its handle (berth only) */
  serverTiming?: (h: unknown) => Record<string, number>;
  stats: () => Promise<TreeStats>;
}

/** Samples of berthd's share of each request (Server-Timing "total") and of the datapath apply within it. */
class Shares {
  readonly berthd: number[] = [];
  readonly datapath: number[] = [];
  readonly phases: Record<string, number>[] = [];

  add(t: Record<string, number> | void | undefined): void {
    if (!t || t.total === undefined) return;
    this.berthd.push(t.total);
    this.datapath.push(t.datapath ?? 0);
    this.phases.push(t);
  }

  /** median ms per phase over the samples (where the berthd share goes) */
  medianPhases(): Record<string, number> {
    const names = new Set(this.phases.flatMap((p) => Object.keys(p)));
    return Object.fromEntries([...names].map((n) => [n, +percentile(this.phases.map((p) => p[n] ?? 0), 50).toFixed(2)]));
  }

  figures(what: string, system: string, out: { berthd: { system: string; samples: number[]; extra?: Record<string, unknown> }[]; datapath: { system: string; samples: number[] }[] }): void {
    if (!this.berthd.length) return;
    out.berthd.push({ system, samples: this.berthd, extra: { phasesMedianMs: this.medianPhases() } });
    out.datapath.push({ system, samples: this.datapath });
    progress(`${what} · ${system}: berthd's share p50 ${percentile(this.berthd, 50).toFixed(1)} ms p99 ${percentile(this.berthd, 99).toFixed(1)} ms, the datapath's p50 ${percentile(this.datapath, 50).toFixed(1)} ms p99 ${percentile(this.datapath, 99).toFixed(1)} ms; median phases ${JSON.stringify(this.medianPhases())}`);
  }
}

const shareFigures = () => ({ berthd: [] as { system: string; samples: number[]; extra?: Record<string, unknown> }[], datapath: [] as { system: string; samples: number[] }[] });

export async function attachSequential(ctls: Ctl[], o: Opts): Promise<ScenarioResult> {
  const create: { system: string; samples: number[] }[] = [];
  const remove: { system: string; samples: number[] }[] = [];
  const notMeasured: { system: string; why: string }[] = [];
  const crShare = shareFigures();
  const rmShare = shareFigures();
  for (const c of ctls) try {
    progress(`attach · ${c.name}: ${o.attach} sequential creates with one published port (${c.createNote}), then removes`);
    const cr: number[] = [];
    const rm: number[] = [];
    const made: unknown[] = [];
    const crS = new Shares();
    const rmS = new Shares();
    for (let i = 0; i < o.attach; i++) {
      const t = performance.now();
      const h = await c.create(`attach-${i}`, [`${22000 + i}:80`]);
      cr.push(performance.now() - t);
      made.push(h);
      crS.add(c.serverTiming?.(h));
    }
    for (const h of made) {
      const t = performance.now();
      rmS.add(await c.remove(h));
      rm.push(performance.now() - t);
    }
    progress(`attach · ${c.name}: create p50 ${percentile(cr, 50).toFixed(1)} ms p99 ${percentile(cr, 99).toFixed(1)} ms; remove p50 ${percentile(rm, 50).toFixed(1)} ms`);
    create.push({ system: c.name, samples: cr });
    remove.push({ system: c.name, samples: rm });
    crS.figures('attach create', c.name, crShare);
    rmS.figures('attach remove', c.name, rmShare);
  } catch (e) {
    notMeasured.push(failed('attach', c.name, e));
  }
  return {
    id: 'attach', title: 'Attach latency, sequential', notMeasured: [...notMeasured, ...skipped],
    method: `${o.attach} creates in a row, each with one published port, timed at the client, then a forced remove of each. berth-*: POST /v1/sandboxes (create + connect to the default bridge + publish, command 'sleep infinity'); docker*: the whole 'docker run -d -p PORT:80 IMAGE sleep' (container start included, so it is an upper bound of Docker's network share) and 'docker rm -f'; podman-*: the same with 'podman run -d' and 'podman rm -f -t 0' (netavark, or the CNI backend calling berth-cni). berthd's share: the Server-Timing header of each answer (from the request's arrival to its answer, queue wait included), the datapath's: the datapath apply within it; the phases' medians are in the JSON (extra.phasesMedianMs). No limit: there is nothing to compare with`,
    figures: [
      msFigure('create + publish', create), msFigure('create + publish, berthd\'s share', crShare.berthd), msFigure('create + publish, the datapath\'s share', crShare.datapath),
      msFigure('remove', remove), msFigure('remove, berthd\'s share', rmShare.berthd), msFigure('remove, the datapath\'s share', rmShare.datapath),
    ],
  };
}

export async function attachConcurrent(ctls: Ctl[], o: Opts): Promise<ScenarioResult> {
  const lat: { system: string; samples: number[]; extra?: Record<string, unknown> }[] = [];
  const rmLat: { system: string; samples: number[] }[] = [];
  const notMeasured: { system: string; why: string }[] = [];
  const crShare = shareFigures();
  const rmShare = shareFigures();
  for (const c of ctls) try {
    progress(`concurrent-attach · ${c.name}: ${o.concurrent} creates at once, each with one published port`);
    const crS = new Shares();
    const rmS = new Shares();
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: o.concurrent }, async (_, i) => {
      const t = performance.now();
      const h = await c.create(`conc-${i}`, [`${23000 + i}:80`]);
      return { h, ms: performance.now() - t };
    }));
    const wall = performance.now() - start;
    for (const r of results) crS.add(c.serverTiming?.(r.h));
    const t1 = performance.now();
    const rms = await Promise.all(results.map(async ({ h }) => {
      const t = performance.now();
      rmS.add(await c.remove(h));
      return performance.now() - t;
    }));
    const rmWall = performance.now() - t1;
    const samples = results.map((r) => r.ms);
    progress(`concurrent-attach · ${c.name}: p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms, all ${o.concurrent} in ${wall.toFixed(0)} ms; removes all in ${rmWall.toFixed(0)} ms`);
    lat.push({ system: c.name, samples, extra: { wallMs: wall, perSecond: (o.concurrent * 1000) / wall } });
    rmLat.push({ system: c.name, samples: rms });
    crS.figures('concurrent-attach create', c.name, crShare);
    rmS.figures('concurrent-attach remove', c.name, rmShare);
  } catch (e) {
    notMeasured.push(failed('concurrent-attach', c.name, e));
  }
  return {
    id: 'concurrent-attach', title: `Attach latency, ${o.concurrent} at once`, notMeasured: [...notMeasured, ...skipped],
    method: `${o.concurrent} creates started together (each with one published port), each timed from its own start to its answer; the wall time for all of them is in extra. berth serialises its mutations, so the p99 is close to the wall time; berthd's share (Server-Timing) includes the wait in its queue. docker*: whole 'docker run -d'`,
    figures: [
      msFigure('create + publish (each)', lat), msFigure('create + publish (each), berthd\'s share', crShare.berthd), msFigure('create + publish (each), the datapath\'s share', crShare.datapath),
      msFigure('remove (each)', rmLat), msFigure('remove (each), berthd\'s share', rmShare.berthd), msFigure('remove (each), the datapath\'s share', rmShare.datapath),
    ],
  };
}

export async function publishScale(ctls: Ctl[], o: Opts): Promise<ScenarioResult> {
  const rows = new Map<string, { create: number[]; remove: number[]; procs: number[]; rss: number[]; pss: number[]; detail: unknown[] }>();
  const variantsOf = (c: Ctl): [string, string[]][] => {
    if (c.name.startsWith('docker') || c.name.startsWith('podman')) {
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

/** The control-plane systems: berth's worlds through the API, Docker's through the docker CLI. */
export function controlSystems(berths: BerthWorld[], dockers: DockerWorld[], podmans: PodmanWorld[] = []): Ctl[] {
  return [    ...berths.map((b): Ctl => ({
      name: b.name,
      createNote: 'API call',
      create: (name, publish) => b.createSandbox(name, publish),
      remove: (h) => b.removeSandboxTimed((h as { id: string }).id),
      serverTiming: (h) => (h as { serverTiming: Record<string, number> }).serverTiming,
      stats: () => b.stats(),
    })),
    ...dockers.map((d): Ctl => ({
      name: d.name,
      createNote: 'whole `docker run -d`, container start included',
      create: (name, publish) => d.createContainer(name, publish),
      remove: (h) => d.removeContainer(h as ContainerInfo),
      stats: () => d.stats(),
    })),
    ...podmans.map((p): Ctl => ({
      name: p.name,
      createNote: 'whole `podman run -d`, container start included',
      create: (name, publish) => p.createContainer(name, publish),
      remove: (h) => p.removeContainer(h as ContainerInfo),
      stats: () => p.stats(),
    })),
  ];
}
