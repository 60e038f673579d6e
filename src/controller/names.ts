/**
 * Who can see whom by name: the embedded DNS answers a sandbox only with the
 * names of sandboxes sharing a user-defined network with it (their names,
 * short ids, network aliases, and its own link aliases), and /etc/hosts
 * carries a sandbox's own addresses and its links, as Docker does.
 */
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import type { HostsEntry } from '../sandbox/files.js';

/** By name, full id, or an unambiguous id prefix of at least 3 characters, as Docker resolves references. */
export function byRef<T extends { id: string; name: string }>(all: T[], ref: string): T | undefined {
  const exact = all.find((x) => x.name === ref) ?? all.find((x) => x.id === ref);
  if (exact) return exact;
  const prefixed = ref.length >= 3 ? all.filter((x) => x.id.startsWith(ref)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** The sandbox whose network namespace @sb uses (itself, or the one it shares). */
export function netOwner(state: State, sb: SandboxRecord): SandboxRecord {
  return sb.mode === 'container' && sb.sharedWith ? (state.sandboxes[sb.sharedWith] ?? sb) : sb;
}

/** Endpoints that carry DNS: on user-defined networks (the default bridge resolves through links only). */
function dnsEndpoints(state: State, sb: SandboxRecord): { n: NetworkRecord; ep: EndpointRecord }[] {
  return netOwner(state, sb)
    .endpoints.map((ep) => ({ n: state.networks[ep.network]!, ep }))
    .filter(({ n }) => n && !n.isDefault);
}

function namesOn(sb: SandboxRecord, ep: EndpointRecord): string[] {
  return [sb.name, shortId(sb.id), ...ep.aliases].map((x) => x.toLowerCase());
}

/** Finds the sandbox that owns @ip (the source of a DNS query). */
export function sandboxByAddress(state: State, ip: string): SandboxRecord | undefined {
  return Object.values(state.sandboxes).find((s) => s.endpoints.some((e) => e.v4 === ip || e.v6 === ip));
}

/** Addresses @name resolves to for @client; null when it is not a name @client can see. */
export function resolveName(state: State, client: SandboxRecord, name: string, family: 4 | 6): string[] | null {
  const wanted = name.toLowerCase();
  const mine = dnsEndpoints(state, client);
  const out: string[] = [];
  let known = false;
  for (const { n } of mine) {
    for (const other of Object.values(state.sandboxes)) {
      const ep = other.endpoints.find((e) => e.network === n.id);
      if (!ep) continue;
      const linkAliases = client.links.filter((l) => l.target === other.id).map((l) => l.alias.toLowerCase());
      if (!namesOn(other, ep).includes(wanted) && !linkAliases.includes(wanted)) continue;
      known = true;
      const addr = family === 4 ? ep.v4 : ep.v6;
      if (addr && !out.includes(addr)) out.push(addr);
    }
  }
  return known ? out : null;
}

/** PTR names for @ip as @client sees them: "name.network". */
export function reverseName(state: State, client: SandboxRecord, ip: string): string[] | null {
  const out: string[] = [];
  for (const { n } of dnsEndpoints(state, client)) {
    for (const other of Object.values(state.sandboxes)) {
      const ep = other.endpoints.find((e) => e.network === n.id && (e.v4 === ip || e.v6 === ip));
      if (ep) out.push(`${other.name}.${n.name}`);
    }
  }
  return out.length ? out : null;
}

/** The address of @target that @sb reaches it by: on a network they share, else its first. */
export function addressFor(state: State, sb: SandboxRecord, target: SandboxRecord): string | undefined {
  const t = netOwner(state, target);
  const mine = new Set(netOwner(state, sb).endpoints.map((e) => e.network));
  const shared = t.endpoints.find((e) => mine.has(e.network));
  return (shared ?? t.endpoints[0])?.v4 ?? (shared ?? t.endpoints[0])?.v6;
}

/** /etc/hosts entries of @sb: its own addresses, --add-host, then its links. */
export function hostsEntries(state: State, sb: SandboxRecord): HostsEntry[] {
  const entries: HostsEntry[] = [];
  for (const ep of netOwner(state, sb).endpoints) {
    if (ep.v4) entries.push({ ip: ep.v4, names: [sb.hostname] });
    if (ep.v6) entries.push({ ip: ep.v6, names: [sb.hostname] });
  }
  for (const h of sb.addHosts) entries.push({ ip: h.ip, names: [h.host] });
  for (const l of sb.links) {
    const t = state.sandboxes[l.target];
    const ip = t && addressFor(state, sb, t);
    if (t && ip) entries.push({ ip, names: [...new Set([l.alias, t.hostname, t.name])] });
  }
  return entries;
}

/**
 * Docker's link environment for @sb: ALIAS_PORT_80_TCP=tcp://IP:80 and its
 * _ADDR/_PORT/_PROTO parts per exposed port, ALIAS_PORT for the lowest,
 * ALIAS_NAME, and the target's own -e variables as ALIAS_ENV_*.
 */
export function linkEnv(state: State, sb: SandboxRecord): Record<string, string> {
  const env: Record<string, string> = {};
  for (const l of sb.links) {
    const t = state.sandboxes[l.target];
    if (!t) continue;
    const ip = addressFor(state, sb, t);
    const p = l.alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    env[`${p}_NAME`] = `/${sb.name}/${l.alias}`;
    const ports = [...t.expose].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
    if (ip) {
      for (const { port, proto } of ports) {
        const key = `${p}_PORT_${port}_${proto.toUpperCase()}`;
        env[key] = `${proto}://${ip}:${port}`;
        env[`${key}_ADDR`] = ip;
        env[`${key}_PORT`] = String(port);
        env[`${key}_PROTO`] = proto;
      }
      const first = ports[0];
      if (first) env[`${p}_PORT`] = `${first.proto}://${ip}:${first.port}`;
    }
    for (const kv of t.env) {
      const i = kv.indexOf('=');
      if (i > 0) env[`${p}_ENV_${kv.slice(0, i)}`] = kv.slice(i + 1);
    }
  }
  return env;
}
