/** Networks of scope 'global' as seen from a berthd that may have no cluster store. */
import { badRequest, type BerthError } from '../errors.js';
import type { NetworkRecord } from '../store/model.js';
import type { Core } from './core.js';

/** What a berthd without a cluster store says when asked for a global network. */
export function needsCluster(what: string): BerthError {
  return badRequest(`${what}: routed and overlay networks need a cluster store: start berthd with --store etcd://HOST:PORT`);
}

/** An address of global network @n for @owner, taken in the cluster store. */
export function allocateGlobal(core: Core, n: NetworkRecord, owner: string, requested?: string): Promise<string | undefined> {
  if (!core.global) throw needsCluster(`network '${n.name}'`);
  return core.global.allocate(n, owner, requested);
}
