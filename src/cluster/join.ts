/**
 * What `berthd --store etcd://...` does before the controller opens: find
 * this host's underlay address and MTU, connect to etcd, register, and load
 * the overlay dataplane with its pins in bpffs. The host id is kept in the
 * state directory, so a restarted berthd is the same host to the cluster.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { nl } from '../netlink/index.js';
import { parseIp } from '../ipam/addr.js';
import { badRequest } from '../errors.js';
import { EtcdStore, parseEtcdUrl, type EtcdTls } from '../store/etcd.js';
import { OverlayDataplane } from '../datapath/overlay/dataplane.js';
import { Cluster, CLUSTER_PREFIX } from './cluster.js';

export interface JoinOptions {
  stateDir: string;
  store: string;
  /** underlay IPv4 address; default: the uplink's own address, else the default route's device's */
  advertiseAddr?: string;
  /** berthd's --uplink: when given, its address is the default advertise address */
  uplink?: string;
  /** bpffs mount the overlay's maps and links are pinned in */
  bpffs: string;
  tls?: EtcdTls;
  /** seconds another host's registration may stay lapsed before its endpoints are withdrawn here (Cluster's default when absent) */
  hostGrace?: number;
  log: Logger;
}

export interface Joined {
  cluster: Cluster;
  overlay: OverlayDataplane;
  underlayMtu: number;
}

async function hostId(stateDir: string): Promise<string> {
  const file = join(stateDir, 'cluster-host-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{16}$/.test(id)) return id;
  } catch {
    /* first start in this state directory */
  }
  const id = randomBytes(8).toString('hex');
  await writeFile(file, `${id}\n`, { mode: 0o600 });
  return id;
}

/** The underlay address and the MTU of its device. */
async function underlay(advertise: string | undefined, uplink: string | undefined): Promise<{ addr: string; mtu: number }> {
  const addrs = await nl.addrList({ family: 4 });
  let dev: string | undefined;
  let addr = advertise;
  if (advertise) {
    const a = parseIp(advertise, '--advertise-addr');
    if (a.family !== 4) throw badRequest(`--advertise-addr ${advertise}: the underlay must be IPv4 in this version`);
    dev = addrs.find((x) => x.cidr.split('/')[0] === a.text)?.dev;
    if (!dev) throw badRequest(`--advertise-addr ${advertise} is not an address of this host (${addrs.map((x) => x.cidr).join(', ') || 'none'})`);
  } else if (uplink) {
    // the operator named the device towards the outside: its one IPv4 address is the underlay's
    dev = uplink;
    const own = addrs.filter((x) => x.dev === uplink && x.scope === 'global').map((x) => x.cidr.split('/')[0]!);
    if (own.length !== 1) throw badRequest(`--uplink ${uplink} has ${own.length ? `${own.length} IPv4 addresses (${own.join(', ')})` : 'no global IPv4 address'}: give --advertise-addr IP`);
    addr = own[0];
  } else {
    dev = (await nl.routeList({ family: 4 })).find((r) => r.dst === 'default')?.dev;
    addr = addrs.find((x) => x.dev === dev && x.scope === 'global')?.cidr.split('/')[0];
    if (!dev || !addr) throw badRequest('no default route with an IPv4 address to advertise: give --advertise-addr IP (or --uplink IFACE)');
  }
  const link = (await nl.linkList({})).find((l) => l.name === dev);
  return { addr: addr!, mtu: link?.mtu ?? 1500 };
}

export async function joinCluster(o: JoinOptions): Promise<Joined> {
  const endpoints = parseEtcdUrl(o.store);
  const id = await hostId(o.stateDir);
  const u = await underlay(o.advertiseAddr, o.uplink);
  const store = new EtcdStore(endpoints, CLUSTER_PREFIX, o.log, o.tls);
  const cluster = new Cluster(store, id, hostname(), u.addr, o.log, o.hostGrace);
  try {
    await cluster.join();
  } catch (e) {
    // berthd starts all the same: its global networks and tunnels are in its own state and
    // pins; it joins when the store answers, and store operations fail meanwhile.
    o.log.warn({ err: (e as Error).message }, 'cluster store unreachable at start: running on the last known state, joining in the background');
    cluster.joinInBackground();
  }
  let overlay: OverlayDataplane;
  try {
    overlay = await OverlayDataplane.open(join(o.bpffs, `berth-${id}`, 'overlay'), o.log);
  } catch (e) {
    await cluster.leave().catch(() => undefined);
    throw e;
  }
  return { cluster, overlay, underlayMtu: u.mtu };
}
