/** The traffic scenarios on one host: container to container, published port, masquerade, hairpin, localhost. */
import { PORTS, Servers, waitPort } from '../lib/tools.js';
import { treeCpuMs } from '../lib/procs.js';
import type { Opts } from '../lib/options.js';
import { BERTH, LIMIT, type BerthWorld, type LimitWorld } from '../lib/world.js';
import { DOCKER, type DockerWorld } from '../lib/docker.js';
import type { PodmanWorld } from '../lib/podman.js';
import { figure, lat, progress, rate, skipped, tput, type FigureResult, type ScenarioResult, type SystemRun } from '../lib/figure.js';

/** A system under test in the traffic scenarios: its client and server containers, host and ext namespaces. */
export interface Peer {
  name: string;
  client: string;
  server: { ns: string; ip: string };
  host: string;
  ext: string;
  up: string;
  extIp: string;
  cpu: () => Promise<number>;
}

/** The benchmark pairs of every berth and Docker world, their servers started (with the limit's) in @servers. */
export async function makePeers(berths: BerthWorld[], dockers: DockerWorld[], limit: LimitWorld | undefined, servers: Servers, podmans: PodmanWorld[] = []): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (const b of berths) {
    const [s1, s2] = await b.makePair();
    peers.push({ name: b.name, client: s1.netns, server: { ns: s2.netns, ip: s2.ip }, host: b.path('host'), ext: b.path('ext'), up: BERTH.up, extIp: BERTH.ext, cpu: () => treeCpuMs([b.pid!]) });
  }
  for (const d of dockers) {
    const [c1, c2] = await d.makePair([PORTS.iperf, PORTS.sockperf, PORTS.http]);
    peers.push({ name: d.name, client: c1.netns, server: { ns: c2.netns, ip: c2.ip }, host: d.path('host'), ext: d.path('ext'), up: DOCKER.up, extIp: DOCKER.ext, cpu: () => treeCpuMs([d.dockerdPid], d.dir) });
  }
  for (const w of podmans) {
    const [c1, c2] = await w.makePair([PORTS.iperf, PORTS.sockperf, PORTS.http]);
    peers.push({ name: w.name, client: c1.netns, server: { ns: c2.netns, ip: c2.ip }, host: w.path('host'), ext: w.path('ext'), up: w.up, extIp: w.extIp, cpu: () => treeCpuMs(w.cpuPids(), w.podman!.dir) });
  }
  if (limit) for (const short of ['lv2', 'lc2', 'lext']) await servers.startAll(short, limit.path(short));
  for (const p of peers) {
    await servers.startAll(`${p.name}/server`, p.server.ns);
    await servers.startAll(`${p.name}/ext`, p.ext);
  }
  return peers;
}

/** The traffic scenarios asked for (@want), each figure against the limit's paths; the servers are the caller's (makePeers). */
export async function trafficScenarios(peers: Peer[], limit: LimitWorld | undefined, o: Opts, want: (id: string) => boolean): Promise<ScenarioResult[]> {
  const scenarios: ScenarioResult[] = [];
  const T = o.seconds;
  const R = o.runs;
  // latency and connection rate settle faster than throughput: half the time (at least 1 s)
  const TL = Math.max(1, Math.round(T / 2));

  type Path = { ns: string; ip: string };
  const traffic: { id: string; title: string; method: string; limits: [string, Path][]; peer: (p: Peer) => Path; figures: ('tput' | 'lat' | 'rate')[] }[] = [
    {
      id: 'c2c', title: 'Same host, container to container',
      method: "limit-veth: two namespaces joined by one veth pair; limit-bridge: two namespaces on a Linux bridge, no netfilter; berth-*: two sandboxes on berth's default bridge network, made through the API; docker*: two containers on docker0",
      limits: limit ? [['limit-veth', { ns: limit.path('lv1'), ip: LIMIT.v2 }], ['limit-bridge', { ns: limit.path('lc1'), ip: LIMIT.c2 }]] : [],
      peer: (p) => ({ ns: p.client, ip: p.server.ip }), figures: ['tput', 'lat', 'rate'],
    },
    {
      id: 'published', title: 'Published port from the external namespace',
      method: "limit-routed: ext → host (forwarding, no NAT, no filter) → bridge → the server at its own address; berth-*: ext → host uplink address:published port → sandbox; docker: the same through Docker's DNAT rule (the userland proxy does not see this path); podman-netavark: through netavark's DNAT rules; podman-berth: through berth's bpf datapath (the publish berth-cni asked for)",
      limits: limit ? [['limit-routed', { ns: limit.path('lext'), ip: LIMIT.c2 }]] : [],
      peer: (p) => ({ ns: p.ext, ip: p.up }), figures: ['tput', 'lat', 'rate'],
    },
    {
      id: 'masquerade', title: 'Outbound masquerade, container to external namespace',
      method: 'limit-routed: container → bridge → host (forwarding, no NAT) → ext, ext routes back; others: container → bridge → host (MASQUERADE to the uplink address) → ext',
      limits: limit ? [['limit-routed', { ns: limit.path('lc1'), ip: LIMIT.ext }]] : [],
      peer: (p) => ({ ns: p.client, ip: p.extIp }), figures: ['tput', 'rate'],
    },
    {
      id: 'hairpin', title: 'Hairpin: container → host address:published port → another container',
      method: "limit-bridge: container to container on the bridge, no NAT; berth-*: client sandbox → host uplink address:published port (DNAT back onto the bridge); docker: client container → host address:published port, which Docker (userland proxy on) leaves to docker-proxy",
      limits: limit ? [['limit-bridge', { ns: limit.path('lc1'), ip: LIMIT.c2 }]] : [],
      peer: (p) => ({ ns: p.client, ip: p.up }), figures: ['tput', 'lat', 'rate'],
    },
    {
      id: 'localhost', title: 'Host → 127.0.0.1:published port',
      method: "limit-routed: the host namespace → the server at its own address, no NAT; berth-*: the host namespace → 127.0.0.1:published port (OUTPUT DNAT, route_localnet on berth's bridges); docker: 127.0.0.1 is docker-proxy's (userland proxy on)",
      limits: limit ? [['limit-routed', { ns: limit.path('lhost'), ip: LIMIT.c2 }]] : [],
      peer: (p) => ({ ns: p.host, ip: '127.0.0.1' }), figures: ['tput', 'lat', 'rate'],
    },
  ];
  const reachable = async (path: Path): Promise<string | null> => {
    try {
      for (const port of [PORTS.iperf, PORTS.sockperf, PORTS.http]) await waitPort(path.ns, path.ip, port);
      return null;
    } catch (e) {
      return (e as Error).message.split('\n')[0]!.slice(0, 200);
    }
  };
  for (const sc of traffic) {
    if (!want(sc.id)) continue;
    const notMeasured: { system: string; why: string }[] = [];
    const limits: [string, Path][] = [];
    for (const [n, p] of sc.limits) {
      const why = await reachable(p);
      if (why) throw new Error(`${sc.id}: the limit path ${n} does not answer: ${why}`);
      limits.push([n, p]);
    }
    const ps: [Peer, Path][] = [];
    for (const p of peers) {
      const path = sc.peer(p);
      const why = await reachable(path);
      if (why) {
        progress(`${sc.id}: SKIPPING ${p.name}: ${why}`);
        notMeasured.push({ system: p.name, why: `the path does not answer: ${why}` });
      } else ps.push([p, path]);
    }
    const lim = limits[0]?.[0] ?? '';
    const sys = (f: typeof tput, t: number): SystemRun[] => [...limits.map(([n, p]) => f(n, p.ns, p.ip, t)), ...ps.map(([p, path]) => f(p.name, path.ns, path.ip, t, p.cpu))];
    const figures: FigureResult[] = [];
    if (sc.figures.includes('tput')) figures.push(await figure(sc.id, 'TCP throughput', 'Gbit/s', true, lim, sys(tput, T), R, 'GB', notMeasured));
    if (sc.figures.includes('lat')) figures.push(await figure(sc.id, 'TCP latency p50 (half RTT)', 'µs', false, lim, sys(lat, TL), R, 'round trip', notMeasured));
    if (sc.figures.includes('rate')) figures.push(await figure(sc.id, 'TCP connection rate', 'conn/s', true, lim, sys(rate, TL), R, 'connection', notMeasured));
    scenarios.push({ id: sc.id, title: sc.title, method: sc.method, figures, notMeasured: [...notMeasured, ...skipped] });
  }
  return scenarios;
}