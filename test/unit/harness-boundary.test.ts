/**
 * The harness boundary: production code (src/, tests beside it excepted)
 * imports nothing from harness/, bench/ or test/; bench/ imports nothing from
 * test/ and harness/ nothing from either (what both need is in harness/).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await tsFiles(p)));
    else if (/\.(c?ts|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** The files under @dir that import from a top-level folder in @folders, as "file -> specifier". */
async function importsInto(dir: string, folders: string[], skip: (f: string) => boolean = () => false): Promise<string[]> {
  const hits: string[] = [];
  for (const f of await tsFiles(projectPath(dir))) {
    if (skip(f)) continue;
    for (const m of (await readFile(f, 'utf8')).matchAll(/(?:from|import|require)\s*\(?\s*'([^']+)'/g)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) continue;
      const target = relative(projectPath(), join(f, '..', spec)).split('/')[0]!;
      if (folders.includes(target)) hits.push(`${relative(projectPath(), f)} -> ${spec}`);
    }
  }
  return hits;
}

describe('the harness boundary', () => {
  it('the probe sees imports: test/ does import harness/', async () => {
    expect((await importsInto('test', ['harness'])).length).toBeGreaterThan(0);
  });

  it('src/ imports nothing from harness/, bench/ or test/', async () => {
    expect(await importsInto('src', ['harness', 'bench', 'test'], (f) => f.endsWith('.test.ts'))).toEqual([]);
  });

  it('bench/ imports nothing from test/, harness/ nothing from test/ or bench/', async () => {
    expect(await importsInto('bench', ['test'])).toEqual([]);
    expect(await importsInto('harness', ['test', 'bench'])).toEqual([]);
  });
});
