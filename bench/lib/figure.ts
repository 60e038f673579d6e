/**
 * How a figure is measured and recorded: samples taken interleaved across the
 * systems with CPU accounting around each, summarised as median, min and max
 * with a ratio to the limit; the runners for throughput, latency and
 * connection rate; the run's progress lines and the systems not measured.
 */
import { percentile, summarize, type Summary } from './stats.js';
import { PORTS, connRate, iperf, sockperf } from './tools.js';
import { machineBusyMs } from './procs.js';

export const t0 = Date.now();
export function progress(msg: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  process.stderr.write(`[bench ${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
}

/** One sample: the figure's value and how many transactions it made (for CPU per transaction). */
export interface Sample {
  value: number;
  tx: number;
  extra?: Record<string, unknown>;
}

/** One system's measurement of one figure: a runner, and the CPU time of the system's own processes. */
export interface SystemRun {
  system: string;
  run: () => Promise<Sample>;
  daemonCpuMs?: () => Promise<number>;
  /** the CPU the load tools are pinned to: that CPU's time is also recorded alone (less of other work in it, but none of a proxy's running elsewhere) */
  cpu?: number;
}

export interface SystemResult {
  system: string;
  samples: number[];
  summary: Summary;
  ratio: number | null;
  deltaToLimit: number | null;
  /** median machine CPU per transaction (µs, or ms per GB for throughput) and the system's own processes' share */
  cpuPerTx?: { machine: number; daemon: number; unit: string } | undefined;
  extra?: unknown[];
}

export interface FigureResult {
  figure: string;
  unit: string;
  higherIsBetter: boolean;
  limit: string;
  systems: SystemResult[];
  notMeasured: { system: string; why: string }[];
}

export interface ScenarioResult {
  id: string;
  title: string;
  method: string;
  figures: FigureResult[];
  notMeasured: { system: string; why: string }[];
  [k: string]: unknown;
}

/** interrupted: set on SIGINT/SIGTERM, no further sample is taken and no result is written. */
export const runState = { interrupted: false };

/** Systems not measured in this run, with the reason, for every scenario. */
export const skipped: { system: string; why: string }[] = [];

/** Runs every system @runs times, interleaved (A B C, then C B A, ...), with CPU accounting around each sample. */
export async function figure(scenario: string, name: string, unit: string, higherIsBetter: boolean, limit: string, systems: SystemRun[], runs: number, txUnit: string, notMeasured: { system: string; why: string }[] = []): Promise<FigureResult> {
  const samples = new Map<string, number[]>(systems.map((s) => [s.system, []]));
  const extras = new Map<string, Record<string, unknown>[]>(systems.map((s) => [s.system, []]));
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? systems : [...systems].reverse();
    for (const s of order) {
      if (runState.interrupted) throw new Error('interrupted');
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

export const tput = (system: string, ns: string, ip: string, T: number, cpu?: () => Promise<number>, port: number = PORTS.iperf): SystemRun => ({
  system, ...(cpu ? { daemonCpuMs: cpu } : {}),
  run: async () => {
    const r = await iperf(ns, ip, port, T);
    return { value: r.gbps, tx: r.bytes / 1e9 };
  },
});
export const lat = (system: string, ns: string, ip: string, T: number, cpu?: () => Promise<number>, port: number = PORTS.sockperf): SystemRun => ({
  // sockperf's client and server are pinned to CPU 0, and so is the softirq work of their packets
  system, ...(cpu ? { daemonCpuMs: cpu } : {}), cpu: 0,
  run: async () => {
    const r = await sockperf(ns, ip, port, T);
    return { value: r.p50, tx: r.roundTrips, extra: { p99: r.p99, avg: r.avg } };
  },
});
export const rate = (system: string, ns: string, ip: string, T: number, cpu?: () => Promise<number>, port: number = PORTS.http): SystemRun => ({
  system, ...(cpu ? { daemonCpuMs: cpu } : {}),
  run: async () => {
    const r = await connRate(ns, ip, port, T);
    if (r.errors) progress(`${system}: wrk counted ${r.errors} socket errors or non-2xx answers`);
    return { value: r.rate, tx: r.requests, extra: { errors: r.errors } };
  },
});

/** A system that failed in one scenario: said on stderr and in the results, and the run goes on. */
export function failed(scenario: string, system: string, e: unknown): { system: string; why: string } {
  // a command's own error output says why; its (long) command line does not
  const err = e as Error & { stderr?: string; command?: string; exitCode?: number | null };
  const text = err.stderr?.trim() ? `'${(err.command ?? '').slice(0, 60)}…' exited ${err.exitCode ?? 'on a signal'}: ${err.stderr.trim()}` : err.message;
  const why = `failed: ${text.split('\n').slice(0, 3).join(' ').slice(0, 400)}`;
  progress(`${scenario}: ${system} ${why}`);
  return { system, why };
}

/** A figure of control-plane samples (ms) with p50/p99, one row per system; @baseline names the row others are compared to. */
export function msFigure(name: string, rows: { system: string; samples: number[]; extra?: Record<string, unknown> }[], unit = 'ms', baseline = ''): FigureResult {
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

export function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'processes') return v.toFixed(0);
  if (unit === 'Gbit/s') return v.toFixed(2);
  if (unit === 'conn/s') return v.toFixed(0);
  return v.toFixed(1);
}
