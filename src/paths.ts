/** Where berth's own files are, relative to the project root. */
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';

/** berth's own package.json is there: a checkout, or the installed package (which has no bpf/ sources). */
function isRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'berth';
  } catch {
    return false;
  }
}

function findRoot(): string {
  // Works from src/ (vitest), from dist/src/ (compiled) and from an npm install of the package.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (isRoot(dir)) return dir;
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
