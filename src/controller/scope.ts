/** What a berthd without a cluster store says when asked for a global network. */
import { badRequest, type BerthError } from '../errors.js';

export function needsCluster(what: string): BerthError {
  return badRequest(`${what}: overlay networks need a cluster store: start berthd with --store etcd://HOST:PORT`);
}
