/**
 * Process accounting read from /proc, no perf: a system's process tree (its
 * daemon and every descendant, plus processes whose command line names a
 * directory of its own, e.g. containerd shims re-parented away from dockerd),
 * with process count, RSS, PSS and CPU time; and the machine's busy CPU time
 * from /proc/stat.
 */
import { readFile, readdir } from 'node:fs/promises';
import { processesMentioning } from '../../harness/procs.js';

const TICK_MS = 10; // USER_HZ is 100 on Linux

export interface TreeStats {
  processes: number;
  rssKb: number;
  /** proportional set size: shared pages divided among their users */
  pssKb: number;
  /** user + system CPU time of the tree, reaped children included (ms) */
  cpuMs: number;
  /** command name -> how many */
  byName: Record<string, number>;
}

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  cpuTicks: number;
}

async function readProcs(): Promise<Map<number, Proc>> {
  const out = new Map<number, Proc>();
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = await readFile(`/proc/${d}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      // fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
      const cpuTicks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      out.set(Number(d), { pid: Number(d), ppid: Number(f[1]), comm, cpuTicks });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The pids of @roots' trees, plus processes (and their trees) whose command line contains @mentioning. */
export async function treePids(roots: number[], mentioning?: string): Promise<{ pids: number[]; procs: Map<number, Proc> }> {
  const procs = await readProcs();
  const set = new Set<number>(roots.filter((r) => procs.has(r)));
  if (mentioning) for (const p of await processesMentioning(mentioning)) if (procs.has(p)) set.add(p);
  const children = new Map<number, number[]>();
  for (const p of procs.values()) {
    const c = children.get(p.ppid) ?? [];
    c.push(p.pid);
    children.set(p.ppid, c);
  }
  const stack = [...set];
  while (stack.length) {
    for (const c of children.get(stack.pop()!) ?? []) {
      if (!set.has(c)) {
        set.add(c);
        stack.push(c);
      }
    }
  }
  return { pids: [...set], procs };
}

export async function treeStats(roots: number[], mentioning?: string, opts: { pss?: boolean } = {}): Promise<TreeStats> {
  const { pids, procs } = await treePids(roots, mentioning);
  let rssKb = 0;
  let pssKb = 0;
  let ticks = 0;
  const byName: Record<string, number> = {};
  for (const pid of pids) {
    const p = procs.get(pid)!;
    ticks += p.cpuTicks;
    byName[p.comm] = (byName[p.comm] ?? 0) + 1;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    if (opts.pss !== false) {
      const roll = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
      pssKb += Number(/^Pss:\s+(\d+)/m.exec(roll)?.[1] ?? 0);
    }
  }
  return { processes: pids.length, rssKb, pssKb, cpuMs: ticks * TICK_MS, byName };
}

/** CPU time (ms) used by @roots' trees: cheap (no memory figures). */
export async function treeCpuMs(roots: number[], mentioning?: string): Promise<number> {
  const { pids, procs } = await treePids(roots, mentioning);
  let ticks = 0;
  for (const pid of pids) ticks += procs.get(pid)!.cpuTicks;
  return ticks * TICK_MS;
}

/** Busy CPU time so far (ms), of all CPUs or of CPU @cpu alone: user, nice, system, irq and softirq. */
export async function machineBusyMs(cpu?: number): Promise<number> {
  const lines = (await readFile('/proc/stat', 'utf8')).split('\n');
  const line = cpu === undefined ? lines[0]! : lines.find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`no cpu${cpu} line in /proc/stat`);
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already inside user; steal is the hypervisor's)
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!;
  return busy * TICK_MS;
}
