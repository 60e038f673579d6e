import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../store/embedded.js';
import { Core } from './core.js';
import { transaction } from './transaction.js';

let dir: string;
let core: Core;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-tx-'));
  const store = new EmbeddedStore(dir);
  core = new Core(await store.load(), { store, stateDir: dir, config: { defaultSubnet: '172.17.0.0/16', defaultBridge: 'berth0' }, log: pino({ level: 'silent' }) });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a transaction', () => {
  it('commits each recorded step at once (the store is written when the operation persists), and keeps them all when it succeeds', async () => {
    await transaction(core, async (tx) => {
      await tx.record((s) => (s.nextEphemeral = 40000), (s) => delete s.nextEphemeral);
      expect(core.state.nextEphemeral).toBe(40000);
      expect((await new EmbeddedStore(dir).load()).nextEphemeral).toBeUndefined();
      tx.onUndo(async () => {
        throw new Error('must not run');
      });
    });
    expect(core.state.nextEphemeral).toBe(40000);
    await core.persist();
    expect((await new EmbeddedStore(dir).load()).nextEphemeral).toBe(40000);
  });

  it('on failure runs the undos newest first, past an undo that fails, and rethrows the first error', async () => {
    const ran: string[] = [];
    const failure = transaction(core, async (tx) => {
      await tx.record((s) => (s.nextEphemeral = 40000), (s) => {
        ran.push('state');
        delete s.nextEphemeral;
      });
      tx.onUndo(async () => {
        ran.push('kernel 1');
      });
      tx.onUndo(async () => {
        ran.push('kernel 2');
        throw new Error('undo failed too');
      });
      throw new Error('step failed');
    });
    await expect(failure).rejects.toThrow('step failed');
    expect(ran).toEqual(['kernel 2', 'kernel 1', 'state']);
    expect(core.state.nextEphemeral).toBeUndefined();
    await core.persist();
    expect((await new EmbeddedStore(dir).load()).nextEphemeral).toBeUndefined();
  });

  it('a failing state change commits nothing', async () => {
    await expect(transaction(core, (tx) => tx.record((s) => {
      s.nextEphemeral = 1;
      throw new Error('refused');
    }, () => undefined))).rejects.toThrow('refused');
    expect(core.state.nextEphemeral).toBeUndefined();
  });
});
