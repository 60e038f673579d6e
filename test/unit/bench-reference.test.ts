import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../bench/lib/options.js';
import { writeResults } from '../../bench/lib/report.js';
import { REFERENCE_DIR } from '../../bench/lib/reference.js';
import type { ScenarioResult } from '../../bench/lib/figure.js';

const scenario: ScenarioResult = {
  id: 'ports-10k',
  title: 'Many published ports',
  method: 'test',
  notMeasured: [],
  figures: [{
    figure: 'first of 10,000 ports',
    unit: 'conn/s',
    higherIsBetter: true,
    limit: 'limit-routed',
    notMeasured: [],
    systems: [
      { system: 'limit-routed', samples: [100, 110, 90], summary: { median: 100, min: 90, max: 110, n: 3 } as never, ratio: null, deltaToLimit: null },
      { system: 'berth-bpf', samples: [99, 101, 98], summary: { median: 99, min: 98, max: 101, n: 3 } as never, ratio: 0.99, deltaToLimit: -1 },
    ],
  }],
};
const meta = { date: '2026-12-04T00:00:00Z', kernel: '6.18', cpu: 'Test CPU', cpus: 2, gitCommit: 'abc123', node: 'v22', loadavgAtStart: '0.10 0.20 0.30 1/100 5', loadavgAtEnd: '1.00 0.50 0.40 1/100 5' };

describe('the bench reference run', () => {
  it('--reference writes to bench/reference and refuses --out, naming it', () => {
    expect(parseArgs(['--reference']).out).toBe(REFERENCE_DIR);
    expect(parseArgs(['--reference']).reference).toBe(true);
    expect(parseArgs([]).reference).toBe(false);
    expect(() => parseArgs(['--reference', '--out', '/tmp/x'])).toThrow(/--reference .*'\/tmp\/x'/);
  });

  it('writes fixed names, a README with the commit, machine, table and every chart, and drops the old charts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-ref-'));
    try {
      await writeFile(join(dir, 'old-scenario-1.svg'), '<svg/>');
      await writeFile(join(dir, 'keep.txt'), 'not the run\'s');
      await writeResults(dir, { meta, command: 'npm run bench -- --reference' }, [scenario], true);
      expect((await readdir(dir)).sort()).toEqual(['README.md', 'keep.txt', 'ports-10k-1.svg', 'result.json']);
      const readme = await readFile(join(dir, 'README.md'), 'utf8');
      expect(readme).toContain('commit: abc123');
      expect(readme).toContain('Test CPU, 2 CPUs, kernel 6.18');
      expect(readme).toContain('0.10 0.20 0.30 at the start, 1.00 0.50 0.40 at the end');
      expect(readme).toMatch(/\| ports-10k \| first of 10,000 ports \(conn\/s\) \| berth-bpf \| .* \| 0\.99× \|/);
      expect(readme).toContain('![Many published ports: first of 10,000 ports](ports-10k-1.svg)');
      expect(JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')).meta.gitCommit).toBe('abc123');
      // a plain run keeps its time-stamped names next to earlier runs
      await writeResults(dir, { meta, command: 'npm run bench' }, [scenario]);
      expect((await readdir(dir)).filter((n) => /^\d{4}-.*ports-10k-1\.svg$/.test(n))).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
