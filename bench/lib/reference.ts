/**
 * The committed reference run: `--reference` writes one run to bench/reference/ under fixed names
 * (result.json, <scenario>-<n>.svg, README.md with the markdown table, the commit, the machine and the
 * command that regenerates it), replacing the previous reference, so the README can show its charts.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { projectPath } from '../../src/paths.js';

export const REFERENCE_DIR = projectPath('bench', 'reference');

/** Removes the previous reference's files (only the kinds a run writes), so no chart of an older run stays. */
export async function clearReference(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (n.endsWith('.svg') || n === 'result.json' || n === 'README.md') await rm(join(dir, n));
}

/** The reference's README: how it was made, the machine, the table, and every chart. */
export function referenceReadme(meta: Record<string, unknown>, command: string, table: string, charts: { file: string; title: string }[]): string {
  const m = meta as { date?: string; kernel?: string; cpu?: string; cpus?: number; gitCommit?: string; node?: string; loadavgAtStart?: string; loadavgAtEnd?: string };
  const load = (s?: string) => (s ?? 'unknown').split(' ').slice(0, 3).join(' ');
  return [
    '# berth benchmark: the reference run',
    '',
    `One run of \`${command}\`, written by the harness itself (\`bench/lib/reference.ts\`); do not edit by hand.`,
    'Regenerate it with `npm run bench:reference` (add `-- --quick` for the quick mode); it replaces every file here.',
    '',
    `- commit: ${m.gitCommit ?? 'unknown'}`,
    `- date: ${m.date ?? 'unknown'}`,
    `- machine: ${m.cpu ?? 'unknown'}, ${m.cpus ?? '?'} CPUs, kernel ${m.kernel ?? 'unknown'}, node ${m.node ?? 'unknown'}`,
    `- load average: ${load(m.loadavgAtStart)} at the start, ${load(m.loadavgAtEnd)} at the end (other work on the machine skews every figure)`,
    '- the raw numbers, every sample and the CPU time per transaction: [result.json](result.json)',
    '',
    'Medians of the interleaved runs with min–max; ratios are to the physical limit measured in the same run.',
    '',
    table.split('\n').slice(2).join('\n'),
    '',
    '## Charts',
    '',
    ...charts.map((c) => `![${c.title}](${c.file})`),
    '',
  ].join('\n');
}

export async function writeReference(dir: string, readme: string): Promise<void> {
  await writeFile(join(dir, 'README.md'), readme);
}
