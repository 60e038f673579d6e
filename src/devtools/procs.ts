/** Finding and ending processes by what their command line names: cleanup of engines started for tests and benchmarks. */
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
