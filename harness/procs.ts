/** Process helpers: ending processes, finding them by what their command line names, and bounding a wait. */
import { readdir, readFile } from 'node:fs/promises';

export function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** Processes whose command line names @dir (a dockerd's containerd and shims, say), this one excepted. */
export async function processesMentioning(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) out.push(Number(e));
  }
  return out;
}

/** Ends what @dir's processes are (TERM, then KILL), up to three rounds half a second apart. */
export async function endProcessesMentioning(dir: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const pids = await processesMentioning(dir);
    if (!pids.length) break;
    for (const pid of pids) tryKill(pid, i ? 'SIGKILL' : 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** @p, or a rejection after @ms. */
export function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
