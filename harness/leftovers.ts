/**
 * Removes what a berthd left in the kernel, from its state directory alone:
 * kills the sandboxes' processes and deletes their network namespaces. For
 * demos and tests that must clean up after a berthd they killed; a running
 * berthd removes its own objects through the API.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { State } from '../src/store/model.js';
import { NETNS_DIR } from '../src/paths.js';
import { tryRun } from '../src/exec.js';

export async function removeLeftovers(stateDir: string): Promise<void> {
  let st: State;
  try {
    st = JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8')) as State;
  } catch {
    return;
  }
  for (const sb of Object.values(st.sandboxes)) {
    if (!sb.pid) continue;
    try {
      process.kill(-sb.pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  const names = await readdir(NETNS_DIR).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(`berth-${st.instance}-`)) await tryRun('ip', ['netns', 'del', name]);
  }
}
