/**
 * berth-cni without a berthd or the kernel: what it loads (the module graph,
 * recorded by the preloaded hook test/cli/startup.test.ts uses), and the
 * verbs that need no berthd answering as the spec says.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { BERTH_CNI } from '../../harness/cni.js';

const HOOK = projectPath('test', 'fixtures', 'record-modules.mjs');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-cni-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs berth-cni under the recorder with @env and @stdin; resolves with the project files it loaded and its stdout. */
async function loaded(env: Record<string, string>, stdin: string): Promise<{ files: string[]; stdout: string }> {
  const log = join(dir, `modules-${Math.random().toString(36).slice(2)}`);
  const vars = Object.entries({ ...env, BERTH_MODULE_LOG: log }).map(([k, v]) => `${k}=${v}`);
  const r = await run('env', [...vars, process.execPath, '--import', HOOK, BERTH_CNI], { input: stdin }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
  const root = projectPath() + '/';
  const files = (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => l.replace(/^\S+ /, '').replace(/^file:\/\//, ''));
  return { files: [...new Set(files.filter((f) => f.startsWith(root) || f.endsWith('.node')).map((f) => f.replace(root, '')))].sort(), stdout: r.stdout };
}

describe('berth-cni start-up', () => {
  it('a verb that asks berthd loads the API client and berth-cni, not the addon, the logger or the controller', async () => {
    const { files, stdout } = await loaded({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, JSON.stringify({ cniVersion: '1.1.0', name: 'web', type: 'berth', socket: join(dir, 'none.sock') }));
    expect(JSON.parse(stdout)).toMatchObject({ code: 50 });
    // The control: the recorder saw the modules that ran.
    expect(files).toContain('dist/src/cni/main.js');
    expect(files).toContain('dist/src/api/client.cjs');
    expect(files).toEqual([
      'dist/src/api/client.cjs',
      'dist/src/api/defaults.cjs',
      'dist/src/cni/config.js',
      'dist/src/cni/main.js',
      'dist/src/cni/result.js',
      'dist/src/cni/spec.js',
      'dist/src/errors.cjs',
    ]);
  });
});

describe('verbs without berthd', () => {
  const cni = (env: Record<string, string>, stdin: string) =>
    run('env', ['-i', `PATH=${process.env.PATH}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, BERTH_CNI], { input: stdin }).then(
      (r) => ({ code: 0, out: JSON.parse(r.stdout || 'null') as Record<string, unknown> | null }),
      (e: { exitCode: number; stdout: string }) => ({ code: e.exitCode, out: JSON.parse(e.stdout) as Record<string, unknown> }),
    );

  it('VERSION needs no CNI_PATH and no berthd', async () => {
    expect(await cni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}')).toEqual({ code: 0, out: { cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] } });
  });

  it('no CNI_COMMAND is an environment error (4) naming it, in the configuration\'s version', async () => {
    expect(await cni({}, '{"cniVersion":"1.0.0","name":"web","type":"berth"}')).toEqual({ code: 1, out: { cniVersion: '1.0.0', code: 4, msg: "CNI_COMMAND '' is not one of ADD, DEL, CHECK, VERSION, STATUS, GC" } });
  });
});
