/**
 * What the compiled `berth` loads (the module graph, recorded by preloaded
 * recorders: ESM URLs through a loader hook, and, without one, CommonJS
 * files, mapped .node addons and whether node's ES module loader started at
 * all): commander only for help and errors, the addon only where a command
 * needs it; `berth version` with no berthd, and install-/uninstall-service into a
 * temporary root, with the written unit checked by `systemd-analyze verify`.
 * No kernel objects.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { UNIT_MARK } from '../../src/cli/service.js';

const BERTH = projectPath('dist', 'src', 'cli', 'berth.cjs');
const HOOK = projectPath('test', 'fixtures', 'record-modules.mjs');
const CJS_RECORDER = projectPath('test', 'fixtures', 'record-cjs.cjs');
const VERSION = (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The project files a module log names (relative to the project root), the recorders' own excepted. */
async function projectFiles(log: string): Promise<{ files: string[]; lines: string[] }> {
  const lines = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  const root = projectPath() + '/';
  const files = lines.map((l) => l.replace(/^\S+ /, '').replace(/^file:\/\//, '')).filter((f) => f.startsWith(root)).map((f) => f.slice(root.length));
  return { files: [...new Set(files)].filter((f) => !f.startsWith('test/fixtures/')).sort(), lines };
}

/** Runs berth with the ESM recording hook (which starts the ES module loader itself); resolves with the project files it loaded and its output. */
async function loaded(...args: string[]): Promise<{ files: string[]; stdout: string }> {
  const log = join(dir, `modules-${Math.random().toString(36).slice(2)}`);
  const r = await run('env', [`BERTH_MODULE_LOG=${log}`, process.execPath, '--import', HOOK, BERTH, ...args]);
  return { files: (await projectFiles(log)).files, stdout: r.stdout };
}

/** Runs berth with the CommonJS recorder; resolves with the project files it loaded, whether the ES module loader started, and how it ended. */
async function loadedCjs(...args: string[]): Promise<{ files: string[]; esmLoader: boolean; esmResolver: boolean; code: number; stdout: string; stderr: string }> {
  const log = join(dir, `cjs-${Math.random().toString(36).slice(2)}`);
  const r = await tryRun('env', [`BERTH_MODULE_LOG=${log}`, process.execPath, '--require', CJS_RECORDER, BERTH, ...args]);
  const { files, lines } = await projectFiles(log);
  const esm = lines.find((l) => l.startsWith('esm-loader '));
  const resolver = lines.find((l) => l.startsWith('esm-resolver '));
  if (!esm || !resolver) throw new Error(`the recorder wrote no verdict on the ES module loader:\n${lines.join('\n')}`);
  return { files, esmLoader: esm === 'esm-loader started', esmResolver: resolver === 'esm-resolver started', code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const HEAVY = ['dist/src/native/addon.js', 'dist/src/doctor/doctor.js', 'dist/src/cli/demo.js', 'dist/src/log.js'];

describe('the module graph', () => {
  it('the recorders see the addon, the doctor, pino and the ES module loader when a command uses them (the control)', async () => {
    const { files } = await loaded('doctor', '--format', 'json');
    expect(files).toContain('dist/src/native/addon.js');
    expect(files).toContain('build/Release/berth.node');
    expect(files).toContain('dist/src/doctor/doctor.js');
    expect(files.some((f) => f.startsWith('node_modules/pino/'))).toBe(true);
    const cjs = await loadedCjs('doctor', '--format', 'json');
    expect(cjs.code).toBe(0);
    expect(cjs.esmLoader).toBe(true);
    expect(cjs.esmResolver).toBe(true);
    expect(cjs.files).toContain('build/Release/berth.node');
  });

  it('berth --help loads the command definitions and the help writer, all CommonJS, not commander, and never starts the ES module loader', async () => {
    const r = await loadedCjs('--help');
    expect(r.stdout).toMatch(/^Usage: berth /);
    expect(r.esmLoader).toBe(false);
    expect(r.esmResolver).toBe(false);
    expect(r.files).toEqual([
      'dist/src/api/defaults.cjs',
      'dist/src/cli/berth.cjs',
      'dist/src/cli/commands.cjs',
      'dist/src/cli/definitions.cjs',
      'dist/src/cli/docker-plugin.cjs',
      'dist/src/cli/help.cjs',
      'dist/src/cli/node-commands.cjs',
      'dist/src/cli/parse.cjs',
      'dist/src/cli/service-commands.cjs',
      'dist/src/cli/spec.cjs',
      'dist/src/cli/table.cjs',
      'dist/src/docker/defaults.cjs',
    ]);
  });

  it('an error loads commander (the control), by its file, without the ES module resolver', async () => {
    const r = await loadedCjs('netwrk');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown command 'netwrk'");
    expect(r.files).toContain('dist/src/cli/commander.cjs');
    expect(r.files).toContain('node_modules/commander/index.js');
    // commander is required by its file: by name its package.json "exports" would load node's ES module resolver.
    expect(r.esmLoader).toBe(false);
    expect(r.esmResolver).toBe(false);
  });

  it('an API command loads the client, not commander, the addon, the doctor, the demo or the logger, and no ES module', async () => {
    const r = await loadedCjs('--socket', join(dir, 'none.sock'), 'ps');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach berthd at .*none\.sock \(ENOENT\)/);
    expect(r.esmLoader).toBe(false);
    expect(r.esmResolver).toBe(false);
    expect(r.files).toContain('dist/src/api/client.cjs');
    expect(r.files).toContain('dist/src/errors.cjs');
    expect(r.files).toContain('dist/src/cli/parse.cjs');
    expect(r.files.filter((f) => HEAVY.includes(f) || f.endsWith('.node') || f.startsWith('node_modules/') || f.includes('/native/') || f === 'dist/src/cli/commander.cjs')).toEqual([]);
  });

  it('berth version reads the build\'s versions file: no addon, no commander, no ES module', async () => {
    const r = await loadedCjs('--socket', join(dir, 'none.sock'), 'version');
    expect(r.code).toBe(0);
    expect(r.esmLoader).toBe(false);
    expect(r.esmResolver).toBe(false);
    for (const f of ['dist/src/cli/version.cjs', 'dist/src/package.cjs', 'dist/src/api/client.cjs']) expect(r.files).toContain(f);
    // version is defined beside the global options: no other command file is loaded for it.
    for (const f of ['dist/src/cli/commands.cjs', 'dist/src/cli/docker-plugin.cjs', 'dist/src/cli/service-commands.cjs', 'dist/src/cli/node-commands.cjs']) expect(r.files).not.toContain(f);
    expect(r.files.filter((f) => HEAVY.includes(f) || f.endsWith('.node') || f.startsWith('node_modules/') || f.includes('/native/') || f === 'dist/src/cli/commander.cjs')).toEqual([]);
  });

  it('berth version asks the addon when the versions file is older than it (the control), and both say the same', async () => {
    const file = projectPath('build', 'Release', 'berth.versions.json');
    const addonFile = projectPath('build', 'Release', 'berth.node');
    const sock = join(dir, 'none.sock');
    const fromFile = (await loadedCjs('--socket', sock, 'version')).stdout;
    const { mtime } = await stat(file);
    const { mtime: addonTime } = await stat(addonFile);
    try {
      await utimes(file, new Date(addonTime.getTime() - 60_000), new Date(addonTime.getTime() - 60_000));
      const r = await loadedCjs('--socket', sock, 'version');
      expect(r.code).toBe(0);
      expect(r.files).toContain('dist/src/native/load.cjs');
      expect(r.files).toContain('build/Release/berth.node');
      expect(r.stdout).toBe(fromFile);
    } finally {
      await utimes(file, mtime, mtime);
    }
    const addon = createRequire(import.meta.url)(addonFile) as { libbpf(): { version: string; mode: string }; abiVersion(): number };
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ libbpf: { version: addon.libbpf().version, mode: addon.libbpf().mode }, datapathAbi: addon.abiVersion() });
  });
});

describe('one command defined alone', () => {
  it('each command file is loaded only for the names it defines, and every command has its file', async () => {
    const req = createRequire(import.meta.url);
    const { buildCli, COMMAND_FILES } = req(projectPath('dist', 'src', 'cli', 'definitions.cjs')) as typeof import('../../src/cli/definitions.cjs');
    const own = ['version', 'doctor', 'demo'];
    for (const n of own) expect(buildCli(n).commands.map((c) => c.name)).toEqual([n]);
    const all = buildCli(undefined).commands.map((c) => c.name);
    expect(all.filter((n) => !own.includes(n)).sort()).toEqual(COMMAND_FILES.flatMap((f) => f.names).sort());
    for (const f of COMMAND_FILES) for (const n of f.names) expect(buildCli(n).commands.map((c) => c.name)).toContain(n);
    // ps loads the daemon commands' file only (the control for version's check above).
    const r = await loadedCjs('--socket', join(dir, 'none.sock'), 'ps');
    expect(r.files).toContain('dist/src/cli/commands.cjs');
    expect(r.files).not.toContain('dist/src/cli/docker-plugin.cjs');
  });

  it('has the help it has in the whole tree, for every command', async () => {
    // (berth writes these itself; commander's own, from the whole tree and from one command, is compared in parse.test.ts)
    const help = (await run(process.execPath, [BERTH, '--help'])).stdout;
    const names = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
    expect(names).toEqual(expect.arrayContaining(['version', 'doctor', 'network', 'run', 'ps', 'inspect', 'docker-plugin', 'install-service']));
    for (const name of names) {
      // `help NAME` builds the whole tree; `NAME --help` only NAME.
      const whole = (await run(process.execPath, [BERTH, 'help', name])).stdout;
      const alone = (await run(process.execPath, [BERTH, name, '--help'])).stdout;
      expect(alone).toBe(whole);
      expect(alone).toMatch(new RegExp(`^Usage: berth ${name} `));
    }
  });

  it('an unknown command still gets the whole tree: commander names it and suggests one', async () => {
    const r = await tryRun(process.execPath, [BERTH, 'netwrk']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown command 'netwrk'");
    expect(r.stderr).toContain('(Did you mean network?)');
  });
});

describe('berth version', () => {
  it('names berth, node, libbpf, the ABI, and a berthd that is not there, without failing', async () => {
    const sock = join(dir, 'absent.sock');
    for (const flag of ['version', '--version', '-v']) {
      const { stdout } = await run(process.execPath, [BERTH, '--socket', sock, flag]);
      expect(stdout).toMatch(new RegExp(`^berth:\\s+${VERSION.replace(/\./g, '\\.')}$`, 'm'));
      expect(stdout).toMatch(new RegExp(`^node:\\s+${process.version.replace(/\./g, '\\.')}$`, 'm'));
      expect(stdout).toMatch(/^libbpf:\s+v1\.\d+ \(in-tree\)$/m);
      expect(stdout).toMatch(/^datapath ABI:\s+1$/m);
      expect(stdout).toContain(`berthd:       not running (socket ${sock}: ENOENT)`);
    }
    const j = JSON.parse((await run(process.execPath, [BERTH, '--socket', sock, 'version', '--format', 'json'])).stdout);
    expect(j).toMatchObject({ berth: VERSION, node: process.version, datapathAbi: 1, libbpf: { mode: 'in-tree' }, berthd: { running: false, socket: sock, reason: 'ENOENT' } });
  });
});

describe('install-service / uninstall-service', () => {
  const berth = (...args: string[]) => tryRun(process.execPath, [BERTH, ...args]);

  it('writes a unit systemd-analyze accepts, with ExecStart of the berthd and --config', async () => {
    const root = join(dir, 'root1');
    const config = join(dir, 'berthd.json');
    await writeFile(config, '{}\n');
    const r = await berth('install-service', '--root', root, '--config', config);
    expect(r.code).toBe(0);
    const unitFile = join(root, 'etc/systemd/system/berthd.service');
    expect(r.stdout).toContain(`wrote ${unitFile}`);
    expect(r.stdout).toContain('next: systemctl daemon-reload && systemctl enable --now berthd');
    const unit = await readFile(unitFile, 'utf8');
    expect(unit.split('\n')[0]).toBe(UNIT_MARK);
    expect(unit).toMatch(new RegExp(`^ExecStart=${process.execPath} ${projectPath('dist/src/daemon/berthd.js')} --config ${config}$`, 'm'));
    for (const want of ['KillMode=process', 'Restart=on-failure', 'Type=simple', 'LimitNOFILE=1048576']) expect(unit).toMatch(new RegExp(`^${want}$`, 'm'));
    for (const hiding of ['PrivateMounts', 'PrivateNetwork', 'PrivateTmp', 'ProtectSystem', 'ProtectHome', 'NetworkNamespacePath', 'PrivateDevices']) {
      expect(unit.split('\n').filter((l) => !l.startsWith('#') && l.includes(hiding))).toEqual([]);
    }
    const v = await tryRun('systemd-analyze', ['verify', unitFile]);
    expect(v).toMatchObject({ code: 0, stderr: '' });
  });

  it('systemd-analyze would catch a bad unit (the control)', async () => {
    const bad = join(dir, 'bad', 'berthd.service');
    await mkdir(join(dir, 'bad'), { recursive: true });
    await writeFile(bad, (await readFile(projectPath('packaging/systemd/berthd.service'), 'utf8')).replace(/^ExecStart=.*$/m, 'ExecStart=/nonexistent/berthd'));
    const v = await tryRun('systemd-analyze', ['verify', bad]);
    expect(v.code).not.toBe(0);
    expect(v.stderr).toMatch(/\/nonexistent\/berthd is not executable/);
  });

  it('takes --berthd, and refuses a relative, missing or non-executable one, naming it', async () => {
    const root = join(dir, 'root2');
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'berthd'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    await writeFile(join(bin, 'plain'), 'x', { mode: 0o644 });
    expect((await berth('install-service', '--root', root, '--berthd', join(bin, 'berthd'))).code).toBe(0);
    expect(await readFile(join(root, 'etc/systemd/system/berthd.service'), 'utf8')).toMatch(new RegExp(`^ExecStart=${bin}/berthd$`, 'm'));
    expect((await berth('install-service', '--root', root, '--berthd', 'bin/berthd')).stderr).toMatch(/--berthd 'bin\/berthd' is not an absolute path/);
    expect((await berth('install-service', '--root', root, '--berthd', '/nonexistent/berthd')).stderr).toMatch(/--berthd '\/nonexistent\/berthd': no such file/);
    expect((await berth('install-service', '--root', root, '--berthd', join(bin, 'plain'))).stderr).toMatch(/--berthd '.*\/plain' is not executable/);
    expect((await berth('install-service', '--root', root, '--config', join(dir, 'nope.json'))).stderr).toMatch(/--config '.*nope\.json': no such file/);
  });

  it('uninstall removes what it wrote and the enablement link, and refuses a unit it did not write', async () => {
    const root = join(dir, 'root3');
    expect((await berth('install-service', '--root', root)).code).toBe(0);
    const unitFile = join(root, 'etc/systemd/system/berthd.service');
    const wants = join(root, 'etc/systemd/system/multi-user.target.wants');
    await mkdir(wants, { recursive: true });
    await symlink('/etc/systemd/system/berthd.service', join(wants, 'berthd.service'));
    const r = await berth('uninstall-service', '--root', root);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toContain(`removed ${unitFile}\nremoved ${join(wants, 'berthd.service')}\n`);
    expect((await berth('uninstall-service', '--root', root)).stdout).toContain(`no ${unitFile}: nothing to remove`);

    const foreign = '[Service]\nExecStart=/usr/bin/true\n';
    await writeFile(unitFile, foreign);
    const refused = await berth('uninstall-service', '--root', root);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${unitFile} was not written by berth install-service`);
    const over = await berth('install-service', '--root', root);
    expect(over.code).toBe(1);
    expect(over.stderr).toContain(`${unitFile} exists and was not written by berth install-service`);
    expect(await readFile(unitFile, 'utf8')).toBe(foreign);
  });
});
