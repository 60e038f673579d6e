/**
 * Processes run in a sandbox: in its network namespace, in a private mount
 * and UTS namespace of their own where the sandbox's hosts, resolv.conf and
 * hostname files are bind-mounted over /etc's and the hostname is set, as a
 * container's processes see them. util-linux's nsenter and unshare do the
 * entering, so no berth process stays in between (berthd starts them with
 * spawn.ts).
 */
import { readFileSync, statfsSync } from 'node:fs';
import type { SandboxFiles } from './files.js';

export interface ProcessSpec {
  /** network namespace file; '' = the caller's own (host mode) */
  netnsPath: string;
  /**
   * The same namespace reached through berthd's own mount namespace
   * (/proc/BERTHD/root/...), for a caller that does not see netnsPath's
   * mount: berthd in a private mount namespace (`ip netns exec`, `unshare -m`,
   * systemd's PrivateMounts) mounts sandbox namespaces where only it sees them.
   */
  netnsVia?: string;
  files: SandboxFiles;
  hostname: string;
  env: Record<string, string>;
  cmd: string[];
}

// $1..$4: hosts, resolv.conf, hostname file, hostname; the command follows.
const SETUP = [
  'mount --bind "$1" /etc/hosts',
  'mount --bind "$2" /etc/resolv.conf',
  'mount --bind "$3" /etc/hostname',
  'hostname "$4"',
  'shift 4',
  'exec "$@"',
].join(' && ');

const NSFS_MAGIC = 0x6e736673;

function isNamespace(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * @spec with the namespace file this process can enter: netnsPath when a
 * namespace is mounted there in this process's view, else netnsVia when that
 * one is; otherwise unchanged (nsenter then names the path it could not enter).
 */
export function reachableFrom(spec: ProcessSpec): ProcessSpec {
  if (!spec.netnsPath || !spec.netnsVia || isNamespace(spec.netnsPath) || !isNamespace(spec.netnsVia)) return spec;
  return { ...spec, netnsPath: spec.netnsVia };
}

/** The argv that runs @spec.cmd inside the sandbox. */
export function sandboxArgv(spec: ProcessSpec): string[] {
  const inner = ['unshare', '--mount', '--uts', '--propagation', 'private', '--', '/bin/sh', '-c', SETUP, 'sh',
    spec.files.hosts, spec.files.resolvConf, spec.files.hostname, spec.hostname, ...spec.cmd];
  return spec.netnsPath ? ['nsenter', `--net=${spec.netnsPath}`, '--', ...inner] : inner;
}

export function sandboxEnv(spec: ProcessSpec): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: spec.hostname,
    ...spec.env,
  };
}

/** The start time of @pid (field 22 of /proc/PID/stat), to tell it from a reused pid. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function isRunning(pid: number | undefined, start: string | undefined): boolean {
  if (!pid || !start) return false;
  const now = processStart(pid);
  if (now !== start) return false;
  // A zombie is not running.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Kills the process group berth started (the command and its children). */
export function killSandboxProcess(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}
