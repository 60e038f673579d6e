/**
 * What the datapath reports, told in the controller's names: events with the
 * sandboxes and networks their addresses belong to (`berth monitor`).
 */
import { badRequest, notFound } from '../errors.js';
import type { Datapath, DpEventBatch, DpEventView } from '../datapath/datapath.js';
import type { State } from '../store/model.js';
import { byRef } from './names.js';

export type NamedEvent = DpEventView & { from?: string; to?: string; fromNetwork?: string; toNetwork?: string };

/** Datapath events after @since, named, filtered by sandbox or network name. */
export async function namedEvents(state: State, dp: Datapath | undefined, since: number, filter: { sandbox?: string; network?: string }): Promise<DpEventBatch & { events: NamedEvent[] }> {
  if (!dp?.events) throw badRequest(`berth monitor needs the eBPF datapath; this berthd runs ${dp?.kind ?? 'none'}`);
  if (filter.sandbox && !byRef(Object.values(state.sandboxes), filter.sandbox)) throw notFound(`sandbox '${filter.sandbox}' not found`);
  const nets = Object.values(state.networks);
  const netName = (id: string) => nets.find((n) => n.id === id)?.name ?? id;
  if (filter.network && !nets.some((n) => n.name === filter.network || n.id === filter.network)) throw notFound(`network '${filter.network}' not found`);
  const who = new Map<string, { sandbox: string; network: string }>();
  for (const sb of Object.values(state.sandboxes)) {
    for (const ep of sb.endpoints) for (const a of [ep.v4, ep.v6]) if (a) who.set(a, { sandbox: sb.name, network: netName(ep.network) });
  }
  const b = await dp.events(since);
  const events = b.events.map((e) => {
    const f = who.get(e.src) ?? (e.nsrc ? who.get(e.nsrc) : undefined);
    const t = who.get(e.dst) ?? (e.ndst ? who.get(e.ndst) : undefined);
    return { ...e, ...(f ? { from: f.sandbox, fromNetwork: f.network } : {}), ...(t ? { to: t.sandbox, toNetwork: t.network } : {}) };
  }).filter((e) => (!filter.sandbox || e.from === filter.sandbox || e.to === filter.sandbox) &&
    (!filter.network || e.fromNetwork === filter.network || e.toNetwork === filter.network));
  return { ...b, events };
}
