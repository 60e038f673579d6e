/**
 * Makes berthd known to dockerd: a plugin spec file (/etc/docker/plugins/NAME.spec
 * holding unix://SOCKET) whose file name is the driver name Docker uses
 * (`docker network create -d NAME --ipam-driver NAME`). dockerd reads it on
 * first use of the driver; no dockerd restart is needed.
 */
import { mkdir, readFile, unlink, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { badRequest } from '../errors.js';

import { PLUGIN_SPEC_DIR } from './defaults.cjs';

export function specPath(name: string, dir = PLUGIN_SPEC_DIR): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw badRequest(`invalid plugin name '${name}'`);
  return join(dir, `${name}.spec`);
}

export async function installPluginSpec(name: string, socket: string, dir = PLUGIN_SPEC_DIR): Promise<string> {
  if (!socket.startsWith('/')) throw badRequest(`plugin socket '${socket}' must be an absolute path`);
  const path = specPath(name, dir);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(`${path}.tmp`, `unix://${socket}\n`, { mode: 0o644 });
  await rename(`${path}.tmp`, path);
  return path;
}

/** Removes the spec file when it is berth's (points at a unix socket); false when there was none. */
export async function uninstallPluginSpec(name: string, dir = PLUGIN_SPEC_DIR): Promise<boolean> {
  const path = specPath(name, dir);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  await unlink(path);
  return true;
}
