/**
 * A sandbox's command: started detached inside its namespace with its files
 * and link environment, supervised (its exit code is recorded), and its
 * output read back by offset.
 */
import { open } from 'node:fs/promises';
import { mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import { filesIn } from '../sandbox/files.js';
import { isRunning, processStart, type ProcessSpec } from '../sandbox/process.js';
import { spawnInSandbox } from '../sandbox/spawn.js';
import type { SandboxRecord, State } from '../store/model.js';
import { parseKeyValues } from './options.js';
import { linkEnv } from './names.js';
import type { Core } from './core.js';
import { phase } from '../timing.js';

/**
 * @path as seen through berthd's own root, whatever mount namespace it runs
 * in. Resolved first: an absolute symlink on the way (/var/run -> /run) would
 * lead the caller back into its own root.
 */
function viaOwnRoot(path: string): string {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    /* not there (yet): as it is */
  }
  return `/proc/${process.pid}/root${real}`;
}

export function processSpec(state: State, sandboxDir: string, sb: SandboxRecord, cmd: string[]): ProcessSpec {
  const envList = [...Object.entries(linkEnv(state, sb)).map(([k, v]) => `${k}=${v}`), ...sb.env];
  return {
    // Host mode runs in berthd's own namespace, which a CLI elsewhere reaches through /proc.
    netnsPath: sb.mode === 'host' ? `/proc/${process.pid}/ns/net` : sb.netnsPath,
    ...(sb.mode === 'host' || !sb.netnsPath ? {} : { netnsVia: viaOwnRoot(sb.netnsPath) }),
    files: filesIn(sandboxDir),
    hostname: sb.hostname,
    env: parseKeyValues(envList, 'environment variable'),
    cmd,
  };
}

/** Starts @sb's command and records its pid, and its exit code once that very process ends. */
export async function startProcess(core: Core, sb: SandboxRecord): Promise<void> {
  const dir = core.sandboxDir(sb.id);
  mkdirSync(dir, { recursive: true });
  const t = performance.now();
  const onExit = (code: number | null, signal: number | null) => {
    core.enqueue(async (c) => {
      if (c.state.sandboxes[sb.id]?.pid !== pid) return;
      await c.commit((s) => {
        s.sandboxes[sb.id]!.exitCode = code ?? (signal ? 128 : null);
      }, false);
    }).catch((e: unknown) => core.log.error({ err: e, sandbox: sb.name }, 'could not record exit code'));
  };
  let pid: number;
  try {
    pid = spawnInSandbox(processSpec(core.state, dir, sb, sb.cmd), join(dir, 'output.log'), onExit);
  } catch (e) {
    throw new BerthError('internal', `could not start '${sb.cmd.join(' ')}' in sandbox '${sb.name}': ${(e as Error).message}`);
  }
  phase('process', performance.now() - t);
  const t2 = performance.now();
  const pidStart = processStart(pid) ?? '';
  // A pid means nothing after a reboot: this commit need not wait for the disk.
  await core.commit((s) => {
    const rec = s.sandboxes[sb.id]!;
    rec.pid = pid;
    rec.pidStart = pidStart;
    rec.exitCode = null;
  }, false);
  phase('record', performance.now() - t2);
}

/** The command's output from byte @offset on (at most 1 MiB at a time). */
export async function readOutput(sandboxDir: string, offset: number): Promise<{ text: string; next: number }> {
  const fh = await open(join(sandboxDir, 'output.log'), 'r').catch(() => undefined);
  if (!fh) return { text: '', next: offset };
  try {
    const { size } = await fh.stat();
    const len = Math.max(0, Math.min(size - offset, 1 << 20));
    const buf = Buffer.alloc(len);
    if (len) await fh.read(buf, 0, len, offset);
    return { text: buf.toString('utf8'), next: offset + len };
  } finally {
    await fh.close();
  }
}

export function processStatus(sb: SandboxRecord): 'running' | 'exited' | 'created' {
  if (isRunning(sb.pid, sb.pidStart)) return 'running';
  return sb.pid ? 'exited' : 'created';
}
