/** Where berth's own files are, relative to the project root. */
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';

function findRoot(): string {
  // Works from src/ (vitest) and from dist/src/ (compiled).
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bpf'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error(`cannot find berth's project root above ${fileURLToPath(import.meta.url)}`);
}

export const projectRoot = findRoot();

export function projectPath(...parts: string[]): string {
  return join(projectRoot, ...parts);
}

/** A compiled BPF object, e.g. bpfObjectPath('count') -> build/bpf/count.bpf.o */
export function bpfObjectPath(name: string): string {
  return projectPath('build', 'bpf', `${name}.bpf.o`);
}

/** Where `ip netns` mounts named network namespaces. */
export const NETNS_DIR = '/var/run/netns';
