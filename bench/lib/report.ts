/** What a run writes: the machine and versions it ran on, the JSON result, an SVG per figure, and the markdown table. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { summarize } from './stats.js';
import { barChart, type Bar } from './svg.js';
import { num, progress, skipped, type ScenarioResult, type SystemResult } from './figure.js';
import type { BerthWorld } from './world.js';
import { clearReference, referenceReadme, writeReference } from './reference.js';

export async function meta(berths: BerthWorld[]): Promise<Record<string, unknown>> {
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

export function cpuCell(c: SystemResult['cpuPerTx']): string {
  if (!c || !Number.isFinite(c.machine)) return '';
  const d = c.unit === 'ms/GB' ? 0 : 1;
  return `${c.machine.toFixed(d)} ${c.unit}` + (c.daemon > 0 ? ` (${c.daemon.toFixed(d)} in its own processes)` : '');
}

export function markdown(meta: Record<string, unknown>, scenarios: ScenarioResult[]): string {
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

/**
 * Writes bench/results/<stamp>.json and an SVG per figure to @out, and prints the markdown table; with
 * @reference, the reference run instead: fixed names in bench/reference/ and its README (lib/reference.ts).
 */
export async function writeResults(out: string, result: { meta: Record<string, unknown>; command: string } & Record<string, unknown>, scenarios: ScenarioResult[], reference = false): Promise<void> {
  const date = new Date().toISOString();
  await mkdir(out, { recursive: true });
  if (reference) await clearReference(out);
  const stamp = reference ? '' : date.replace(/[:.]/g, '-') + '-';
  const jsonPath = join(out, reference ? 'result.json' : `${stamp.slice(0, -1)}.json`);
  await writeFile(jsonPath, JSON.stringify(result, null, 2) + '\n');
  const charts: { file: string; title: string }[] = [];
  for (const sc of scenarios) {
    for (const [i, f] of sc.figures.entries()) {
    const bars: Bar[] = f.systems.map((s) => ({ label: s.system, median: s.summary.median, min: s.summary.min, max: s.summary.max, ratio: s.ratio }));
    bars.push(...f.notMeasured.filter((n) => !f.systems.some((s) => s.system === n.system) && n.why !== 'not asked for (--systems)').map((n) => ({ label: n.system, median: NaN, min: NaN, max: NaN, note: 'not measured' })));
    const file = `${stamp}${sc.id}-${i + 1}.svg`;
    charts.push({ file, title: `${sc.title}: ${f.figure}` });
    await writeFile(join(out, file), barChart(`${sc.title}: ${f.figure}`, f.unit, bars, { higherIsBetter: f.higherIsBetter, ...(sc.id === 'policy-scale' ? { ratioLabel: 'no policy' } : sc.id === 'drop-flood' ? { ratioLabel: f.unit === 'ns' ? 'sender only' : 'quiet' } : {}) }));
    }
  }
  const table = markdown(result.meta, scenarios);
  if (reference) await writeReference(out, referenceReadme(result.meta, result.command, table, charts));
  progress(`wrote ${jsonPath}, ${charts.length} SVG charts${reference ? ` and ${join(out, 'README.md')}` : ''}`);
  process.stdout.write('\n' + table + '\n');
}
