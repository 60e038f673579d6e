/** What the API accepts: the shapes of requests, checked before anything changes. */
import { badRequest } from '../errors.js';

export interface CreateNetworkRequest {
  name: string;
  driver?: string;
  subnets?: string[];
  gateways?: string[];
  ipRanges?: string[];
  auxAddresses?: Record<string, string>;
  internal?: boolean;
  ipv6?: boolean;
  options?: Record<string, string>;
}

export interface RunRequest {
  name?: string;
  network?: string;
  ip?: string;
  ip6?: string;
  networkAliases?: string[];
  publish?: string[];
  publishAll?: boolean;
  publishAllow?: string[];
  /** CIDR[:PORT[/PROTO]] each, or ['none'] (egress.ts) */
  egressAllow?: string[];
  expose?: string[];
  links?: string[];
  dns?: string[];
  dnsSearch?: string[];
  hostname?: string;
  addHosts?: string[];
  env?: string[];
  cmd: string[];
}

/** Changes to a running sandbox (`berth update`). */
export interface UpdateRequest {
  /** the new egress allow-list, replacing the old one (['none']: nothing outside) */
  egressAllow?: string[];
  /** drop the sandbox's own list: its networks' default applies again */
  egressClear?: boolean;
}

export interface ConnectRequest {
  sandbox: string;
  ip?: string;
  ip6?: string;
  aliases?: string[];
}

export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw badRequest(`invalid ${what} name '${String(name)}': use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  return name;
}

export function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badRequest(`${what} must be a list of strings`);
  return v as string[];
}

export function optString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw badRequest(`${what} must be a string`);
  return v;
}

export function optBool(v: unknown, what: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw badRequest(`${what} must be true or false`);
  return v;
}
