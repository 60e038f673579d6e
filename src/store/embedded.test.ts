import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedStore } from './embedded.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the embedded store', () => {
  it('starts empty with a random instance id, and reads back what it saved', async () => {
    const s = new EmbeddedStore(dir);
    const st = await s.load();
    expect(st.instance).toMatch(/^[0-9a-f]{6}$/);
    st.nextEphemeral = 40000;
    await s.save(st);
    expect(await new EmbeddedStore(dir).load()).toEqual(st);
  });

  it('ignores a torn temporary file left by a crash mid-write', async () => {
    const s = new EmbeddedStore(dir);
    const st = await s.load();
    await s.save(st);
    await writeFile(join(dir, 'state.json.tmp'), '{"version":1,"netw');
    expect(await new EmbeddedStore(dir).load()).toEqual(st);
    await expect(readFile(join(dir, 'state.json.tmp'))).rejects.toThrow(/ENOENT/);
  });

  it('makes saves durable behind them: flush() resolves once the last is on disk, and the file holds the newest', async () => {
    const s = new EmbeddedStore(dir);
    const st = await s.load();
    for (let i = 0; i < 20; i++) {
      st.nextEphemeral = 40000 + i;
      await s.save(st);
    }
    await s.flush();
    expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'))).toEqual(st);
    expect(await new EmbeddedStore(dir).load()).toEqual(st);
  });

  it('refuses a state file of another version, naming it', async () => {
    await writeFile(join(dir, 'state.json'), JSON.stringify({ version: 99, instance: 'x', networks: {}, sandboxes: {} }));
    await expect(new EmbeddedStore(dir).load()).rejects.toThrow(/state\.json has state version 99; this berthd reads version 1/);
  });
});
