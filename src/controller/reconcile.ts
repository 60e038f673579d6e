/**
 * Replays the store over the kernel on start: creates missing bridges,
 * namespaces and endpoints, then asks each driver to sweep what it made that
 * the store no longer has (and the namespaces of this instance's gone
 * sandboxes). Nothing that is not berth's is touched.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { netnsExists, sweepNetns } from '../drivers/netns.js';
import { realizeSandbox } from './sandboxes.js';
import { hasFiles, writeFiles } from './sandbox-files.js';
import type { Core } from './core.js';

export async function reconcile(core: Core): Promise<{ created: string[]; removed: string[] }> {
  const created: string[] = [];
  const removed: string[] = [];
  for (const n of Object.values(core.state.networks)) await core.driverOf(n).createNetwork(n);
  for (const sb of Object.values(core.state.sandboxes)) {
    if (sb.mode === 'external') continue;
    if ((sb.mode === 'networks' || sb.mode === 'none') && !(await netnsExists(sb.netnsPath))) created.push(`netns ${sb.netnsPath}`);
    for (const ep of sb.endpoints) {
      const n = core.state.networks[ep.network];
      if (n && !(await core.driverOf(n).endpointPresent(n, sb, ep).catch(() => false))) created.push(`endpoint ${sb.name}/${ep.ifname}`);
    }
    await realizeSandbox(core, sb);
    // Files are written once: host resolv.conf changes reach a sandbox only when it is made anew, as in Docker.
    if (!(await hasFiles(core, sb))) await writeFiles(core, sb);
  }
  for (const d of Object.values(core.drivers)) removed.push(...(await d.sweep(core.state)));
  removed.push(...(await sweepNetns(core.state.instance, new Set(Object.values(core.state.sandboxes).map((s) => s.netnsPath)))));
  removed.push(...(await sweepSandboxDirs(core)));
  for (const n of Object.values(core.state.networks)) await core.opts.events?.networkUp?.(n);
  core.log.info({ created, removed }, 'reconciled');
  return { created, removed };
}

/** A create or remove cut short by a crash can leave a sandbox's directory (files, output) that the store does not have. */
async function sweepSandboxDirs(core: Core): Promise<string[]> {
  const root = join(core.opts.stateDir, 'sandboxes');
  const gone: string[] = [];
  for (const id of await readdir(root).catch(() => [] as string[])) {
    if (core.state.sandboxes[id]) continue;
    await rm(join(root, id), { recursive: true, force: true });
    gone.push(`sandbox directory ${id}`);
  }
  return gone;
}
