/** The error a promise rejects with, for tests of the addon's failures. */
import type { NativeError } from '../../src/native/addon.js';

/** The error @p rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<NativeError> {
  try {
    await p;
  } catch (e) {
    return e as NativeError;
  }
  throw new Error('expected a rejection');
}
