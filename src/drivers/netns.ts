/**
 * Sandbox network namespaces: made, removed and swept here, the only place
 * berth creates or deletes a namespace. A sandbox's namespace is mounted at
 * NETNS_DIR/berth-<instance>-<short id>, so this berthd's own are known by name.
 */
import { readdir, statfs } from 'node:fs/promises';
import { nl } from '../netlink/index.js';
import { NETNS_DIR } from '../paths.js';

const NSFS_MAGIC = 0x6e736673;

export function sandboxNetnsPath(instance: string, shortId: string): string {
  return `${NETNS_DIR}/berth-${instance}-${shortId}`;
}

/** A namespace file is alive only while a namespace is mounted on it (after a reboot the file may linger). */
export async function netnsExists(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** Makes the namespace at @path unless one is mounted there already. */
export async function ensureNetns(path: string): Promise<void> {
  if (!(await netnsExists(path))) await nl.netnsCreate(path);
}

/** Makes a namespace at @path, a path no namespace was made at so far (a file there: as ensureNetns). */
export async function createNetns(path: string): Promise<void> {
  try {
    await nl.netnsCreate(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    await ensureNetns(path);
  }
}

export async function removeNetns(path: string): Promise<void> {
  await nl.netnsDelete(path).catch(() => undefined);
}

/** Removes this instance's namespaces that are not in @keep; returns what it removed. */
export async function sweepNetns(instance: string, keep: Set<string>): Promise<string[]> {
  const prefix = `berth-${instance}-`;
  const removed: string[] = [];
  let files: string[] = [];
  try {
    files = await readdir(NETNS_DIR);
  } catch {
    /* no namespace was ever mounted here */
  }
  for (const f of files) {
    const p = `${NETNS_DIR}/${f}`;
    if (f.startsWith(prefix) && !keep.has(p)) {
      await nl.netnsDelete(p);
      removed.push(`netns ${p}`);
    }
  }
  return removed;
}
