/**
 * Sandboxes: a namespace (its own, the host's, none, or another sandbox's),
 * its endpoints, files and process. Every change is validated in full, then
 * committed to the state, then made in the kernel by drivers; a failure in the
 * kernel step undoes both (transaction.ts). The store is written when the
 * operation ends (Core.commit).
 */
import { rm } from 'node:fs/promises';
import { badRequest, conflict, notFound } from '../errors.js';
import { isRunning, killSandboxProcess } from '../sandbox/process.js';
import { createNetns, ensureNetns, removeNetns } from '../drivers/netns.js';
import { mtuOf } from '../drivers/bridge.js';
import type { EndpointRecord, SandboxRecord } from '../store/model.js';
import { checkName, optBool, parseRunRequest, strings, type ConnectRequest, type RunRequest, type UpdateRequest } from './requests.js';
import { parseEgressList } from './egress.js';
import { shortId } from './names.js';
import { allocatePublishes } from './publish.js';
import { dropEndpoint, gatewayEndpoint, joinEndpoint, leaveEndpoint, newEndpoint, releaseEndpoint } from './endpoints.js';
import { refreshLinkers, writeFiles } from './sandbox-files.js';
import { startProcess } from './processes.js';
import { transaction } from './transaction.js';
import { allocateGlobal } from './scope.js';
import type { Core } from './core.js';
import { phase, stopwatch, timed } from '../timing.js';

export async function runSandbox(core: Core, req: RunRequest): Promise<SandboxRecord> {
  // 1. Validate everything before anything changes.
  const tv = performance.now();
  const spec = parseRunRequest(core, req);
  phase('validate', performance.now() - tv);
  const { id, network } = spec;
  // A global network's address is taken in the cluster store first (the local pool then only records it).
  const clusterIp = network?.scope === 'global' ? await allocateGlobal(core, network, id, spec.ip) : undefined;
  const t0 = process.hrtime.bigint();
  const lap = stopwatch();
  const sb = await transaction(core, async (tx) => {
    // 2. Allocate and record (in memory: the store is written when the operation ends; a crash before leaves kernel objects
    // of no recorded sandbox, which reconcile sweeps).
    const tr = performance.now();
    const rec = await tx.record((draft) => {
      const r: SandboxRecord = {
        id, name: spec.name, created: new Date().toISOString(), mode: spec.mode, ...(spec.sharedWith ? { sharedWith: spec.sharedWith } : {}),
        netnsPath: spec.mode === 'host' ? '' : spec.mode === 'container' ? draft.sandboxes[spec.sharedWith!]!.netnsPath : core.netnsPathFor(id),
        hostname: spec.hostname, dns: spec.dns, dnsSearch: spec.dnsSearch, addHosts: spec.addHosts, env: spec.env, links: spec.links,
        expose: spec.expose, publish: [], publishAll: spec.publishAll, publishAllow: spec.publishAllow, endpoints: [], cmd: spec.cmd,
        ...(spec.egressAllow ? { egressAllow: spec.egressAllow } : {}),
      };
      r.publish = allocatePublishes(draft, id, spec.publish, spec.publishAll, spec.expose, core.opts.ports);
      const ip = clusterIp ?? spec.ip;
      if (network) r.endpoints.push(newEndpoint(draft, network, r, { ...(ip ? { ip } : {}), ...(spec.ip6 ? { ip6: spec.ip6 } : {}), aliases: spec.aliases }));
      draft.sandboxes[id] = r;
      return r;
    }, (s) => {
      for (const ep of s.sandboxes[id]?.endpoints ?? []) releaseEndpoint(s, ep);
      delete s.sandboxes[id];
    });
    phase('record', performance.now() - tr);
    lap('record');
    // 3. Make it real.
    tx.onUndo(() => destroySandbox(core, rec));
    // The files need only the state: written while the kernel makes the namespace and veth (both settle before an undo).
    const [kernel, files] = await Promise.allSettled([realizeSandbox(core, rec, true), timed('files', () => writeFiles(core, rec))]);
    if (kernel.status === 'rejected') throw kernel.reason;
    if (files.status === 'rejected') throw files.reason;
    lap('kernel+files');
    await startProcess(core, rec);
    lap('process');
    return rec;
  });
  await refreshLinkers(core, sb);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  core.log.info({ sandbox: sb.name, id: shortId(id), mode: sb.mode, addresses: sb.endpoints.map((e) => e.v4), ms: Math.round(ms * 100) / 100, phases: lap.phases }, 'sandbox running');
  return core.state.sandboxes[id]!;
}

/**
 * Creates @sb's namespace (when it has its own) and joins its endpoints.
 * Idempotent; @fresh: a sandbox just recorded, whose endpoints cannot exist
 * yet (the presence check dumps every link of the host: not on that path).
 */
export async function realizeSandbox(core: Core, sb: SandboxRecord, fresh = false): Promise<void> {
  // Another engine owns an external sandbox's namespace: berth cannot remake its interface there.
  if (sb.mode === 'external') return;
  // A fresh sandbox's namespace path is new: made without looking first (a file left there is still looked at).
  if (sb.mode === 'networks' || sb.mode === 'none') await timed('netns', () => (fresh ? createNetns(sb.netnsPath) : ensureNetns(sb.netnsPath)));
  for (const ep of sb.endpoints) {
    const n = core.state.networks[ep.network];
    if (!n) continue;
    const d = core.driverOf(n);
    if (fresh) {
      await joinEndpoint(core, sb, ep);
      continue;
    }
    if (await d.endpointPresent(n, sb, ep)) continue;
    await d.leave(n, sb, ep).catch(() => undefined);
    await joinEndpoint(core, sb, ep);
  }
}

/** Takes @sb out of the kernel: its process, endpoints, namespace and files. */
export async function destroySandbox(core: Core, sb: SandboxRecord): Promise<void> {
  if (sb.mode === 'external') {
    for (const ep of sb.endpoints) await core.bridge.leaveExternal(ep, sb.external?.peer ?? '');
    return;
  }
  if (sb.pid && isRunning(sb.pid, sb.pidStart)) killSandboxProcess(sb.pid);
  for (const ep of sb.endpoints) await timed('teardown.links', () => leaveEndpoint(core, sb, ep).catch(() => undefined));
  if (sb.mode === 'networks' || sb.mode === 'none') await timed('teardown.netns', () => removeNetns(sb.netnsPath));
  await timed('teardown.files', () => rm(core.sandboxDir(sb.id), { recursive: true, force: true }));
}

export async function removeSandbox(core: Core, ref: string, force: boolean): Promise<void> {
  const sb = core.sandbox(ref);
  if (sb.mode === 'external') throw badRequest(`sandbox '${sb.name}' belongs to ${sb.external?.engine ?? 'another engine'}: remove the container there`);
  if (isRunning(sb.pid, sb.pidStart) && !force) {
    throw conflict(`sandbox '${sb.name}' is running: use rm -f to kill and remove it`);
  }
  const sharers = Object.values(core.state.sandboxes).filter((s) => s.sharedWith === sb.id);
  if (sharers.length) throw conflict(`sandbox '${sb.name}' shares its network namespace with ${sharers.map((s) => s.name).join(', ')}: remove them first`);
  await core.commit((s) => {
    for (const ep of sb.endpoints) releaseEndpoint(s, ep);
    delete s.sandboxes[sb.id];
  });
  await destroySandbox(core, sb);
  await refreshLinkers(core, sb);
  core.log.info({ sandbox: sb.name }, 'sandbox removed');
}

/** Changes a sandbox in place: its egress allow-list (new connections follow it; no restart). */
export async function updateSandbox(core: Core, ref: string, req: UpdateRequest): Promise<SandboxRecord> {
  const sb = core.sandbox(ref);
  const list = parseEgressList(strings(req?.egressAllow, 'egress-allow'));
  const clear = optBool(req?.egressClear, 'egress-clear');
  if (list && clear) throw badRequest('--egress-allow and --egress-clear contradict each other: give one');
  if (!list && !clear) throw badRequest('nothing to update: give --egress-allow CIDR[:PORT[/PROTO]] (repeatable, or none) or --egress-clear');
  if (sb.mode !== 'networks') throw badRequest(`sandbox '${sb.name}' uses --network ${sb.mode === 'container' ? 'container:…' : sb.mode}: an egress allow-list needs a network of its own`);
  await core.commit((s) => {
    const cur = s.sandboxes[sb.id]!;
    if (list) cur.egressAllow = list;
    else delete cur.egressAllow;
  });
  core.log.info({ sandbox: sb.name, egressAllow: list ?? 'network default' }, 'sandbox updated');
  return core.state.sandboxes[sb.id]!;
}

export async function connectSandbox(core: Core, netRef: string, req: ConnectRequest): Promise<EndpointRecord> {
  const n = core.network(netRef);
  const sb = core.sandbox(checkName(req?.sandbox, 'sandbox'));
  if (sb.mode !== 'networks') throw badRequest(`sandbox '${sb.name}' uses --network ${sb.mode === 'container' ? 'container:…' : sb.mode} and cannot be connected to networks`);
  if (sb.endpoints.some((e) => e.network === n.id)) throw conflict(`sandbox '${sb.name}' is already connected to network '${n.name}'`);
  const aliases = strings(req.aliases, 'aliases');
  for (const a of aliases) checkName(a, 'network alias');
  const ip = n.scope === 'global' ? await allocateGlobal(core, n, sb.id, req.ip) : req.ip;
  const ep = await transaction(core, async (tx) => {
    const e = await tx.record((draft) => {
      const cur = draft.sandboxes[sb.id]!;
      const made = newEndpoint(draft, n, cur, { ...(ip ? { ip } : {}), ...(req.ip6 ? { ip6: req.ip6 } : {}), aliases });
      cur.endpoints.push(made);
      return made;
    }, (s) => dropEndpoint(s, sb.id, e.id));
    const cur = core.state.sandboxes[sb.id]!;
    tx.onUndo(() => core.driverOf(n).leave(n, cur, e));
    await joinEndpoint(core, cur, e);
    return e;
  });
  const cur = core.state.sandboxes[sb.id]!;
  await writeFiles(core, cur);
  await refreshLinkers(core, cur);
  return ep;
}

export async function disconnectSandbox(core: Core, netRef: string, sandboxRef: string): Promise<void> {
  const n = core.network(netRef);
  const sb = core.sandbox(sandboxRef);
  const ep = sb.endpoints.find((e) => e.network === n.id);
  if (!ep) throw notFound(`sandbox '${sb.name}' is not connected to network '${n.name}'`);
  const wasGateway = gatewayEndpoint(core, sb)?.id === ep.id;
  await core.commit((s) => dropEndpoint(s, sb.id, ep.id));
  await core.driverOf(n).leave(n, sb, ep);
  const cur = core.state.sandboxes[sb.id]!;
  const next = gatewayEndpoint(core, cur);
  if (wasGateway && next) {
    // The interface exists already: only the default routes move to it.
    const nn = core.state.networks[next.network]!;
    await core.driverOf(nn).setGateway(nn, cur, next, { gateway: true, mtu: mtuOf(nn) });
  }
  await writeFiles(core, cur);
  await refreshLinkers(core, cur);
}
