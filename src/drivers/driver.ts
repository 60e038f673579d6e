/**
 * The contract between the controller and a network driver: set a network up
 * or down, join a sandbox to it or take it out. Every call is idempotent, so
 * reconcile can replay the stored state over whatever the kernel still has.
 */
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';

export interface JoinContext {
  /** this endpoint carries the sandbox's default routes */
  gateway: boolean;
  mtu: number;
}

export interface NetworkDriver {
  readonly name: string;
  createNetwork(n: NetworkRecord): Promise<void>;
  deleteNetwork(n: NetworkRecord): Promise<void>;
  join(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void>;
  leave(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<void>;
  /** true when the endpoint's interfaces are all present in the kernel */
  endpointPresent(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<boolean>;
  /** @ep (already joined) now carries the sandbox's default routes: another endpoint left */
  setGateway(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void>;
  /** Removes what this driver made that @state no longer has; returns what it removed. */
  sweep(state: State): Promise<string[]>;
}

/** A kernel error code from the addon, for idempotent steps. */
export function errCode(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

export async function ignoring<T>(codes: string[], fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (codes.includes(errCode(e) ?? '')) return undefined;
    throw e;
  }
}
