/**
 * A sandbox's /etc/hosts, resolv.conf and hostname, written from the state:
 * on a user-defined network the embedded DNS at the gateway answers, else the
 * host's nameservers (or --dns) do, as in Docker.
 */
import { access } from 'node:fs/promises';
import { poolFor } from '../ipam/ipam.js';
import { filesIn, hostResolvConf, renderHosts, renderResolvConf, usableNameservers, writeSandboxFiles } from '../sandbox/files.js';
import type { SandboxRecord } from '../store/model.js';
import { hostsEntries, netOwner } from './names.js';
import type { Core } from './core.js';

export async function writeFiles(core: Core, sb: SandboxRecord): Promise<void> {
  const { state } = core;
  const owner = netOwner(state, sb);
  const dnsNet = owner.endpoints.map((e) => state.networks[e.network]).find((n) => n && !n.isDefault && (n.driver === 'bridge' || n.driver === 'overlay' || n.driver === 'routed'));
  const host = await hostResolvConf(core.opts.resolvConf);
  const resolv = dnsNet
    ? { nameservers: [poolFor(dnsNet.pools, 4)!.gateway], search: sb.dnsSearch.length ? sb.dnsSearch : host.search, options: ['ndots:0'] }
    : { nameservers: sb.dns.length ? sb.dns : usableNameservers(host.nameservers), search: sb.dnsSearch.length ? sb.dnsSearch : host.search, options: host.options };
  await writeSandboxFiles(core.sandboxDir(sb.id), {
    hosts: renderHosts(hostsEntries(state, sb)),
    resolvConf: renderResolvConf(resolv),
    hostname: sb.hostname,
  });
}

/** True when @sb's files were written (they are written once, as Docker writes them). */
export async function hasFiles(core: Core, sb: SandboxRecord): Promise<boolean> {
  try {
    await access(filesIn(core.sandboxDir(sb.id)).resolvConf);
    return true;
  } catch {
    return false;
  }
}

/** Rewrites the hosts files of every sandbox linked to @target (its address may have changed). */
export async function refreshLinkers(core: Core, target: SandboxRecord): Promise<void> {
  for (const s of Object.values(core.state.sandboxes)) {
    if (s.id !== target.id && s.links.some((l) => l.target === target.id)) await writeFiles(core, s).catch(() => undefined);
  }
}
