/**
 * The embedded store: the state document in the state directory, written
 * crash-safely (write a temporary file, rename it over the old one; the file
 * and the directory are fsynced behind, see save()), so a `kill -9` at any
 * moment leaves either the old or the new state, never a torn one.
 */
import { open, readFile, mkdir, rm } from 'node:fs/promises';
import { renameSync, writeFileSync } from 'node:fs';
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
   * Replaces the stored state: a temporary file renamed over the old one, so
   * a berthd killed at any moment leaves the old or the new state (the page
   * cache outlives the process). The fsyncs that make it survive a power
   * loss run behind, coalesced (flush()): a request does not wait for the
   * disk, and ten saves in a row cost one or two fsyncs instead of twenty.
   * What a power loss can cost is the last changes of a few milliseconds,
   * and a power loss takes every namespace and veth they made as well (the
   * next start's reconcile rebuilds from what is on disk). @durable false:
   * a fact a reboot voids anyway (a sandbox process's pid and exit code),
   * never flushed for its own sake.
   */
  async save(state: State, durable = true): Promise<void> {
    if (this.flushError) {
      const e = this.flushError;
      this.flushError = undefined;
      throw unavailable(`the state in ${this.file} could not be written to disk: ${e.message}`);
    }
    const tmp = `${this.file}.tmp`;
    // Synchronous: a page-cache write and a rename cost less than the four thread-pool round trips of their async forms,
    // which on a busy machine is most of what a request waits for; the fsyncs (the slow part) stay behind, async.
    writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
    renameSync(tmp, this.file);
    this.saved++;
    if (!durable) return;
    this.wanted = this.saved;
    this.kick();
  }

  /** Resolves once every durable save so far is on disk (berthd's stop waits for it). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.flushError) throw this.flushError;
  }

  /** saves so far, the last one that must be durable, and the last one that is */
  private saved = 0;
  private wanted = 0;
  private synced = 0;
  private flushing: Promise<void> | undefined;
  private flushError: Error | undefined;

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushLoop()
      .catch((e: unknown) => {
        this.flushError = e as Error;
      })
      .finally(() => {
        this.flushing = undefined;
        // a save that came while the loop was ending
        if (this.synced < this.wanted && !this.flushError) this.kick();
      });
  }

  private async flushLoop(): Promise<void> {
    while (this.synced < this.wanted) {
      // The file opened now is save number @g or a later one: syncing it makes @g durable.
      const g = this.saved;
      for (const path of [this.file, this.dir]) {
        const h = await open(path, 'r');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
      }
      this.synced = Math.max(this.synced, g);
    }
  }
}
