/**
 * The embedded store: the state document in the state directory, written
 * crash-safely (write a temporary file, fsync it, rename over the old one,
 * fsync the directory), so a `kill -9` at any moment leaves either the old
 * or the new state, never a torn one.
 */
import { open, readFile, rename, mkdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { STATE_VERSION, type State } from './model.js';
import { unavailable } from '../errors.js';

export class EmbeddedStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'state.json');
  }

  /** The stored state, or a fresh one when there is none yet. */
  async load(): Promise<State> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await rm(`${this.file}.tmp`, { force: true });
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return { version: STATE_VERSION, instance: randomBytes(3).toString('hex'), networks: {}, sandboxes: {} };
    }
    const state = JSON.parse(text) as State;
    if (state.version !== STATE_VERSION) {
      throw unavailable(`${this.file} has state version ${state.version}; this berthd reads version ${STATE_VERSION}`);
    }
    return state;
  }

  /**
   * Replaces the stored state. @durable false skips the fsyncs: the rename is
   * still atomic, so a killed berthd leaves the old or the new state, but a
   * power loss may keep the old one. For facts that a reboot voids anyway
   * (a sandbox process's pid and exit code).
   */
  async save(state: State, durable = true): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    if (!durable) return;
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}
