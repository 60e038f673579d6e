/**
 * Starting a sandbox's process from berthd without forking berthd: node's
 * child_process forks (about 5 ms at berthd's size, on every attach, on the
 * JS thread); the addon's posix_spawn does not copy the address space. The
 * process stays berthd's child; its exit status is collected on SIGCHLD
 * (libuv's own handler reaps only the children libuv started, so the two do
 * not take each other's).
 */
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { addon } from '../native/addon.js';
import { sandboxArgv, sandboxEnv, type ProcessSpec } from './process.js';

export type ExitListener = (code: number | null, signal: number | null) => void;

/** pid -> what to tell when it ends */
const watched = new Map<number, ExitListener>();
let listening = false;

function reapAll(): void {
  for (const [pid, cb] of watched) {
    const r = addon().childReap(pid);
    if (!r) continue;
    watched.delete(pid);
    cb(r.code, r.signal);
  }
}

const resolved = new Map<string, string>();

/** @cmd found on @path (PATH's syntax), as execvp would find it; a name with a '/' as it is. */
export function whichOn(cmd: string, path: string): string {
  if (cmd.includes('/')) return cmd;
  const key = `${path}\0${cmd}`;
  const hit = resolved.get(key);
  if (hit) return hit;
  for (const dir of path.split(':')) {
    const f = join(dir || '.', cmd);
    try {
      accessSync(f, constants.X_OK);
      resolved.set(key, f);
      return f;
    } catch {
      /* next */
    }
  }
  throw Object.assign(new Error(`'${cmd}' is not found on PATH ${path}: berthd needs util-linux's nsenter and unshare`), { code: 'ENOENT' });
}

/** Starts @spec.cmd in its sandbox, in a session of its own, output to @logFile; @onExit hears of its end. */
export function spawnInSandbox(spec: ProcessSpec, logFile: string, onExit: ExitListener): number {
  if (!listening) {
    // Unref'd like every signal listener: it keeps nothing alive.
    process.on('SIGCHLD', reapAll);
    listening = true;
  }
  const argv = sandboxArgv(spec);
  const env = sandboxEnv(spec);
  const fd = openSync(logFile, 'a', 0o640);
  try {
    const pid = addon().spawnDetached({
      file: whichOn(argv[0]!, env.PATH!),
      argv,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      output: fd,
    });
    watched.set(pid, onExit);
    return pid;
  } finally {
    closeSync(fd);
  }
}
