/** Where berth's own files are, relative to the project root. */
import { join } from 'node:path';
import { projectRoot } from './package.cjs';

export { projectRoot };

export function projectPath(...parts: string[]): string {
  return join(projectRoot, ...parts);
}

/** A compiled BPF object, e.g. bpfObjectPath('count') -> build/bpf/count.bpf.o */
export function bpfObjectPath(name: string): string {
  return projectPath('build', 'bpf', `${name}.bpf.o`);
}

/** Where `ip netns` mounts named network namespaces. */
export const NETNS_DIR = '/var/run/netns';
