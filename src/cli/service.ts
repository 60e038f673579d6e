/**
 * `berth install-service` / `uninstall-service`: the systemd unit of berthd,
 * made from the one shipped in packaging/systemd/berthd.service with its
 * ExecStart pointed at the berthd installed here. The unit is only written or
 * removed; systemctl is left to the operator, who is told what to run.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile, readlink, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { badRequest, conflict } from '../errors.js';
import { projectPath } from '../paths.js';

export const UNIT_NAME = 'berthd.service';
/** The first line of every unit berth writes: uninstall removes only files that start with it. */
export const UNIT_MARK = '# Written by `berth install-service`; `berth uninstall-service` removes it.';
const TEMPLATE = projectPath('packaging', 'systemd', UNIT_NAME);
/** systemd's PATH for services: a `#!/usr/bin/env node` berthd finds node only there. */
const SYSTEMD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export const unitPath = (root: string) => join(root, 'etc', 'systemd', 'system', UNIT_NAME);
const wantsLink = (root: string) => join(root, 'etc', 'systemd', 'system', 'multi-user.target.wants', UNIT_NAME);

/** One ExecStart word, quoted as systemd reads it: specifiers (%) and variables ($) taken literally. */
export function systemdWord(w: string): string {
  const lit = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(lit) ? lit : `"${lit.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

const isExecutable = (p: string) => access(p, constants.X_OK).then(() => true, () => false);
const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

async function usesEnvNode(script: string): Promise<boolean> {
  const head = (await readFile(script).catch(() => Buffer.alloc(0))).subarray(0, 64).toString('utf8');
  return /^#!\s*\/usr\/bin\/env\s+node\b/.test(head);
}

/**
 * The command ExecStart runs. A script that starts with `#!/usr/bin/env node`
 * runs as is when systemd's PATH has this node; otherwise under this node,
 * by its absolute path.
 */
async function berthdCommand(script: string): Promise<string[]> {
  if (script.endsWith('.js') || !(await isExecutable(script))) return [process.execPath, script];
  if (await usesEnvNode(script)) {
    const nodeDir = dirname(process.execPath);
    if (!SYSTEMD_PATH.includes(nodeDir)) return [process.execPath, script];
  }
  return [script];
}

/** The berthd to run: --berthd, else the one beside this berth (an installed package), else on PATH, else this checkout's. */
export async function findBerthd(given: string | undefined): Promise<string[]> {
  if (given !== undefined) {
    if (!isAbsolute(given)) throw badRequest(`--berthd '${given}' is not an absolute path: systemd needs one (e.g. ${resolve(given)})`);
    if (!(await isFile(given))) throw badRequest(`--berthd '${given}': no such file`);
    if (!given.endsWith('.js') && !(await isExecutable(given))) throw badRequest(`--berthd '${given}' is not executable (chmod +x it, or give berthd.js to run under ${process.execPath})`);
    return berthdCommand(given);
  }
  const candidates = [
    ...(process.argv[1] ? [join(dirname(resolve(process.argv[1])), 'berthd')] : []),
    ...(process.env.PATH ?? '').split(delimiter).filter(isAbsolute).map((d) => join(d, 'berthd')),
  ];
  for (const c of candidates) if ((await isFile(c)) && (await isExecutable(c))) return berthdCommand(c);
  const checkout = projectPath('dist', 'src', 'daemon', 'berthd.js');
  if (await isFile(checkout)) return [process.execPath, checkout];
  throw badRequest(`no berthd found (beside ${process.argv[1] ?? 'berth'}, on PATH, or at ${checkout}): give --berthd PATH`);
}

/** The unit: the shipped one with the mark on top and ExecStart replaced by @argv. */
export function renderUnit(template: string, argv: string[]): string {
  const lines = template.split('\n');
  const at = lines.flatMap((l, i) => (/^ExecStart=/.test(l) ? [i] : []));
  if (at.length !== 1) throw new Error(`${TEMPLATE} has ${at.length} ExecStart lines, not one`);
  lines[at[0]!] = `ExecStart=${argv.map(systemdWord).join(' ')}`;
  return `${UNIT_MARK}\n${lines.join('\n')}`;
}

async function writtenByBerth(path: string): Promise<boolean> {
  return (await readFile(path, 'utf8')).split('\n', 1)[0] === UNIT_MARK;
}

export interface InstallOptions {
  root: string;
  berthd?: string;
  config?: string;
}

export async function installService(o: InstallOptions): Promise<{ path: string; execStart: string; replaced: boolean }> {
  const argv = await findBerthd(o.berthd);
  if (o.config !== undefined) {
    const cfg = resolve(o.config);
    if (!(await isFile(cfg))) throw badRequest(`--config '${o.config}': no such file (write it first, or leave --config out for berthd's default /etc/berth/berthd.json)`);
    argv.push('--config', cfg);
  }
  const path = unitPath(resolve(o.root));
  const existing = await stat(path).then(() => true, () => false);
  if (existing && !(await writtenByBerth(path))) {
    throw conflict(`${path} exists and was not written by berth install-service (its first line is not berth's mark): move it away first; it is left as it is`);
  }
  const unit = renderUnit(await readFile(TEMPLATE, 'utf8'), argv);
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFile(`${path}.tmp`, unit, { mode: 0o644 });
  await rename(`${path}.tmp`, path);
  return { path, execStart: argv.map(systemdWord).join(' '), replaced: existing };
}

export async function uninstallService(root: string): Promise<{ path: string; removed: boolean; unlinked: string | null }> {
  const path = unitPath(resolve(root));
  if (!(await stat(path).then(() => true, () => false))) return { path, removed: false, unlinked: null };
  if (!(await writtenByBerth(path))) {
    throw conflict(`${path} was not written by berth install-service (its first line is not berth's mark): not removing it`);
  }
  // `systemctl enable` made this link; without the unit it would dangle.
  const link = wantsLink(resolve(root));
  const target = await readlink(link).catch(() => null);
  let unlinked: string | null = null;
  if (target !== null && (target === path || target === `/etc/systemd/system/${UNIT_NAME}` || target === `../${UNIT_NAME}`)) {
    await unlink(link);
    unlinked = link;
  }
  await unlink(path);
  return { path, removed: true, unlinked };
}
