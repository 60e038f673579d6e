/**
 * A change that spans the store and the kernel, undone as a whole: each step
 * that succeeded registers how to take it back, and a failure later runs
 * those undos newest first. State steps commit at once (a crash from there on
 * is repaired by reconcile), so their undo is itself a committed change.
 */
import type { State } from '../store/model.js';
import type { Core } from './core.js';

export class Transaction {
  private readonly undos: (() => Promise<unknown>)[] = [];

  constructor(private readonly core: Core) {}

  /** Commits @change to the state now; on rollback commits @undo. */
  async record<T>(change: (draft: State) => T, undo: (draft: State) => void): Promise<T> {
    const out = await this.core.commit(change);
    this.undos.push(() => this.core.commit(undo));
    return out;
  }

  /** Registers the undo of a kernel step that is about to be made (run even when that step fails half-way). */
  onUndo(undo: () => Promise<unknown>): void {
    this.undos.push(undo);
  }

  async rollback(): Promise<void> {
    for (const undo of this.undos.reverse()) await undo().catch(() => undefined);
    this.undos.length = 0;
  }
}

/** Runs @fn as one transaction: its registered undos run if it throws. */
export async function transaction<T>(core: Core, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = new Transaction(core);
  try {
    return await fn(tx);
  } catch (e) {
    await tx.rollback();
    throw e;
  }
}
