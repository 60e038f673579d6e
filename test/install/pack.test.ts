/**
 * The package as a user gets it: `npm pack` of this checkout, installed with
 * `npm install -g` into a temporary prefix, offline and with an empty npm
 * cache (the tarball must carry everything: dist/, the addon, the BPF objects
 * and the runtime dependencies), then the installed berth and berthd at work
 * in a test-made host namespace.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import type { NetworkView } from '../../src/api/views.js';
import type { Topology } from '../../harness/topology.js';
import { BerthHost } from '../../harness/berthd.js';
import { testTopology } from '../helpers/kernel.js';

const exec = promisify(execFile);
let dir: string;
let prefix: string;
let topo: Topology | undefined;
let h: BerthHost | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-pack-'));
  prefix = join(dir, 'prefix');
  // prepack builds (native: up to date, a no-op; TypeScript: dist/).
  await exec('npm', ['pack', '--pack-destination', dir], { cwd: projectPath(), timeout: 240_000, maxBuffer: 64 << 20 });
  const tgz = (await readdir(dir)).filter((f) => /^berth-.*\.tgz$/.test(f));
  expect(tgz).toHaveLength(1);
  await exec('npm', ['install', '-g', '--offline', '--cache', join(dir, 'cache'), '--prefix', prefix, `./${tgz[0]}`], { cwd: dir, timeout: 240_000, maxBuffer: 64 << 20 });
}, 600_000);

afterAll(async () => {
  await h?.destroy();
  await topo?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('npm pack | npm install -g', () => {
  it('installs berth and berthd as commands, with the addon and BPF objects in the package', async () => {
    const help = await exec(join(prefix, 'bin', 'berth'), ['--help'], { cwd: dir });
    expect(help.stdout).toMatch(/^Usage: berth /m);
    expect(help.stdout).toMatch(/^\s+doctor\b/m);
    const dHelp = await exec(join(prefix, 'bin', 'berthd'), ['--help'], { cwd: dir });
    expect(dHelp.stdout).toMatch(/^Usage: berthd /m);
    expect(dHelp.stdout).toContain('--config <file>');
    const pkg = join(prefix, 'lib', 'node_modules', 'berth');
    expect((await readdir(join(pkg, 'build', 'bpf'))).sort()).toEqual(['count.bpf.o', 'kdrops.bpf.o', 'overlay.bpf.o', 'tc_container.bpf.o', 'tc_host.bpf.o', 'tc_uplink.bpf.o']);
    // berth.versions.json: what `berth version` reports of the addon, written by the native build beside it.
    expect((await readdir(join(pkg, 'build', 'Release'))).sort()).toEqual(['berth.node', 'berth.versions.json']);
  });

  it('runs the installed berthd in a host namespace and answers the installed berth', async () => {
    topo = testTopology();
    h = await BerthHost.create(topo, 'host', ['--datapath', 'bpf'], { berthd: [join(prefix, 'bin', 'berthd')], timeoutMs: 30_000 });
    const pkg = join(prefix, 'lib', 'node_modules', 'berth');
    // The process is the installed package's: the addon mapped is the installed one, not this checkout's.
    const maps = await readFile(`/proc/${h.proc!.pid}/maps`, 'utf8');
    expect(maps).toContain(join(pkg, 'build', 'Release', 'berth.node'));
    expect(maps).not.toContain(projectPath('build', 'Release', 'berth.node'));
    const berth = (...args: string[]) => exec(join(prefix, 'bin', 'berth'), ['--socket', h!.socket, ...args], { cwd: dir, timeout: 30_000 });
    const nets = JSON.parse((await berth('network', 'ls', '--format', 'json')).stdout) as NetworkView[];
    expect(nets.map((n) => n.Name)).toEqual(['bridge', 'host', 'none']);
    await berth('run', '-d', '--name', 'web', '--', 'sleep', 'infinity');
    const ps = (await berth('ps')).stdout;
    expect(ps).toMatch(/\bweb\b/);
    const info = JSON.parse((await berth('doctor', '--format', 'json')).stdout) as { daemon: { answering: boolean; datapath?: { choice: string } } };
    expect(info.daemon).toMatchObject({ answering: true, datapath: { choice: 'bpf' } });
    await berth('rm', '-f', 'web');
    await h.process!.stop('SIGTERM');
    expect(h.process!.proc.exitCode).toBe(0);
    expect(h.logs).toContain('berthd stopped');
  });
});
