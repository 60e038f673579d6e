/**
 * What the API accepts: the shapes of requests, and the parsers that turn a
 * request into a checked spec before anything changes.
 */
import { randomBytes } from 'node:crypto';
import { badRequest, conflict } from '../errors.js';
import { parseIp, parsePrefix } from '../ipam/addr.js';
import type { EgressRule, NetworkRecord, PortProto, SandboxRecord, State } from '../store/model.js';
import { parseKeyValues } from './options.js';
import { parseExpose, parsePortSpec, type PortSpec } from './portspec.js';
import { parseEgressList } from './egress.js';
import { byRef, netOwner, shortId } from './names.js';

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

/** A `berth run` request, checked in full and resolved against the state. */
export interface RunSpec {
  id: string;
  name: string;
  cmd: string[];
  hostname: string;
  dns: string[];
  dnsSearch: string[];
  addHosts: { host: string; ip: string }[];
  env: string[];
  expose: PortProto[];
  publish: PortSpec[];
  publishAll: boolean;
  publishAllow: string[];
  egressAllow?: EgressRule[];
  aliases: string[];
  links: { target: string; alias: string }[];
  mode: SandboxRecord['mode'];
  /** mode 'container': the sandbox whose namespace it shares */
  sharedWith?: string;
  /** mode 'networks': the network of its first endpoint */
  network?: NetworkRecord;
  ip?: string;
  ip6?: string;
}

/** What parsing a request may look up: the state and references into it. */
export interface Lookups {
  readonly state: State;
  network(ref: string): NetworkRecord;
  sandbox(ref: string): SandboxRecord;
  /** a sandbox of another host a --link may name (src/cluster/global.ts linkTarget) */
  readonly global?: { linkTarget?(state: State, ref: string): { id: string; name: string } | undefined };
}

export function parseRunRequest(core: Lookups, req: RunRequest): RunSpec {
  const cmd = strings(req?.cmd, 'cmd');
  if (!cmd.length) throw badRequest('no command given: berth run ... -- CMD [ARGS]');
  const id = randomBytes(32).toString('hex');
  const name = req.name ? checkName(req.name, 'sandbox') : `sandbox-${id.slice(0, 6)}`;
  if (Object.values(core.state.sandboxes).some((s) => s.name === name)) throw conflict(`sandbox name '${name}' is already in use`);
  const netRef = optString(req.network, 'network') ?? 'bridge';
  const hostname = optString(req.hostname, 'hostname') ?? shortId(id);
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(hostname)) throw badRequest(`invalid hostname '${hostname}'`);
  const dns = strings(req.dns, 'dns').map((d) => parseIp(d, 'DNS server').text);
  const dnsSearch = strings(req.dnsSearch, 'dns-search');
  for (const d of dnsSearch) if (!/^[a-zA-Z0-9.-]+$/.test(d)) throw badRequest(`invalid DNS search domain '${d}'`);
  const addHosts = strings(req.addHosts, 'add-host').map((h) => {
    const i = h.lastIndexOf(':', h.includes('[') ? h.indexOf('[') : undefined);
    const host = h.slice(0, h.indexOf(':'));
    const ip = h.slice(h.indexOf(':') + 1).replace(/^\[|\]$/g, '');
    if (i < 0 || !host || !/^[a-zA-Z0-9.-]+$/.test(host)) throw badRequest(`invalid --add-host '${h}': expected HOST:IP`);
    return { host, ip: parseIp(ip, `address in --add-host '${h}'`).text };
  });
  const env = strings(req.env, 'env');
  parseKeyValues(env, 'environment variable');
  const expose = strings(req.expose, 'expose').flatMap(parseExpose);
  const publishAllow = strings(req.publishAllow, 'publish-allow').map((c) => parsePrefix(c, 'publish-allow source', true).text);
  const egressAllow = parseEgressList(strings(req.egressAllow, 'egress-allow'));
  const aliases = strings(req.networkAliases, 'network-alias');
  for (const a of aliases) checkName(a, 'network alias');
  const links = strings(req.links, 'link').map((l) => {
    const [tname = '', alias] = l.split(':');
    // A sandbox here, or one of another host on a global network (the overlay or the routed network enforces that link).
    const t = byRefOrNull(core, tname) ?? core.global?.linkTarget?.(core.state, tname) ?? core.sandbox(tname);
    return { target: t.id, alias: alias ? checkName(alias, 'link alias') : t.name };
  });
  const publishSpecs = strings(req.publish, 'publish');
  const publishAll = optBool(req.publishAll, 'publish-all');

  let mode: SandboxRecord['mode'] = 'networks';
  let sharedWith: string | undefined;
  let network: NetworkRecord | undefined;
  if (netRef === 'host') mode = 'host';
  else if (netRef === 'none') mode = 'none';
  else if (netRef.startsWith('container:')) {
    mode = 'container';
    sharedWith = netOwner(core.state, core.sandbox(netRef.slice('container:'.length))).id;
  } else network = core.network(netRef);
  if (mode !== 'networks') {
    if (publishSpecs.length || publishAll) throw badRequest(`published ports (-p/-P) need a network: --network ${netRef} has none of its own`);
    if (req.ip || req.ip6) throw badRequest(`--ip needs a network: --network ${netRef} has none of its own`);
    if (aliases.length) throw badRequest(`--network-alias needs a network: --network ${netRef} has none of its own`);
    if (egressAllow) throw badRequest(`--egress-allow needs a network: --network ${netRef} has none of its own${mode === 'container' ? ' (the list of the sandbox whose namespace it shares applies)' : ''}`);
  }
  return {
    id, name, cmd, hostname, dns, dnsSearch, addHosts, env, expose, publish: publishSpecs.map(parsePortSpec), publishAll, publishAllow,
    ...(egressAllow ? { egressAllow } : {}), aliases, links, mode,
    ...(sharedWith ? { sharedWith } : {}), ...(network ? { network } : {}),
    ...(req.ip ? { ip: req.ip } : {}), ...(req.ip6 ? { ip6: req.ip6 } : {}),
  };
}

function byRefOrNull(core: Lookups, ref: string): { id: string; name: string } | undefined {
  try {
    return core.sandbox(ref);
  } catch {
    return undefined;
  }
}
