/**
 * berth's side-by-side benchmark: the physical limit (same topology, no
 * filtering, no NAT), berth on each datapath asked for, and Docker as it
 * ships, measured in one run, interleaved (A B C, then C B A, ...), each
 * figure the median of N runs with min and max, a ratio to the limit and the
 * CPU time per transaction. Writes bench/results/<date>.json and an SVG per
 * figure, prints a markdown table. Everything lives in namespaces the harness
 * makes and removes (also on failure and Ctrl-C).
 *
 *   npm run bench -- --quick                                   (a few minutes)
 *   npm run bench -- --quick --systems limit,iptables,docker --only c2c,published
 *   npm run bench                                              (longer runs, more repetitions)
 *   npm run bench:reference                                    (the committed run in bench/reference/)
 *
 * This file is the command: it builds the worlds, runs the scenarios asked
 * for and writes the result. The flags are lib/options.ts; how a figure is
 * measured, lib/figure.ts; the output, lib/report.ts; the scenarios,
 * scenarios/*.ts; the worlds (lib/world.ts, lib/docker.ts, lib/overlay.ts)
 * stand on the harness tests use (harness/).
 */
import { readFile } from 'node:fs/promises';
import { tryRun } from '../src/exec.js';
import { listNetns } from '../harness/topology.js';
import { Servers } from './lib/tools.js';
import { BerthWorld, LimitWorld, PREFIX, benchTopology } from './lib/world.js';
import { DockerWorld, rootRuleCount } from './lib/docker.js';
import { PODMAN_SYSTEMS, PodmanWorld } from './lib/podman.js';
import type { OverlayWorld } from './lib/overlay.js';
import { BERTH_DATAPATHS, parseArgs } from './lib/options.js';
import { progress, runState, skipped, type ScenarioResult } from './lib/figure.js';
import { meta, writeResults } from './lib/report.js';
import { attachConcurrent, attachSequential, controlSystems, publishScale } from './scenarios/control.js';
import { makePeers, trafficScenarios } from './scenarios/traffic.js';
import { overlayScenario } from './scenarios/overlay.js';
import { dropFlood } from './scenarios/flood.js';
import { manyPorts, policyScale } from './scenarios/scale.js';

/** The reason a berthd refused to start, from its error: the last log line with a message. */
function refusal(e: unknown): string {
  const text = (e as Error).message;
  const msgs = text.split('\n').flatMap((l) => {
    try {
      const j = JSON.parse(l) as { msg?: string; err?: { message?: string } };
      return [j.err?.message ? `${j.msg ?? ''}: ${j.err.message}` : j.msg ?? ''];
    } catch {
      return l.trim() && !l.startsWith('berthd exited') ? [l.trim()] : [];
    }
  }).filter(Boolean);
  return (msgs.slice(-2).join(' | ') || text.split('\n')[0] || 'unknown').slice(0, 400);
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the benchmark makes network namespaces: run it as root');
  const stale = await listNetns(PREFIX);
  if (stale.length) throw new Error(`namespaces from an earlier run are still there (${stale.join(', ')}): remove them with 'ip netns del NAME' first`);
  const rootRules = await rootRuleCount();

  const topo = benchTopology();
  const servers = new Servers();
  const berths: BerthWorld[] = [];
  const dockers: DockerWorld[] = [];
  const podmans: PodmanWorld[] = [];
  const overlays: OverlayWorld[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      progress('cleanup: servers, sandboxes and containers, berthd and dockerd, namespaces');
      await servers.stopAll().catch((e: unknown) => progress(`cleanup: servers: ${(e as Error).message}`));
      for (const d of dockers) await d.destroy().catch((e: unknown) => progress(`cleanup: ${d.name}: ${(e as Error).message}`));
      for (const p of podmans) await p.destroy().catch((e: unknown) => progress(`cleanup: ${p.name}: ${(e as Error).message}`));
      for (const b of berths) await b.destroy().catch((e: unknown) => progress(`cleanup: ${b.name}: ${(e as Error).message}`));
      for (const w of overlays) await w.destroy().catch((e: unknown) => progress(`cleanup: overlay ${w.name}: ${(e as Error).message}`));
      const failures = await topo.destroy();
      for (const f of failures) progress(`cleanup: ${f}`);
      const left = [...(await listNetns(PREFIX))];
      for (const b of berths) if (b.instance) left.push(...(await listNetns(`berth-${b.instance}-`)));
      // podman's own container namespaces (netns-<uuid>) are removed by its rm; podman-berth's berthd names none of its own
      for (const w of overlays) for (const h of w.hosts) if (h.instance) left.push(...(await listNetns(`berth-${h.instance}-`)));
      if (left.length) progress(`cleanup: WARNING namespaces left: ${left.join(', ')}`);
      else progress('cleanup: done, no namespace of this run is left');
      const after = await rootRuleCount();
      if (after !== rootRules) progress(`cleanup: WARNING the root namespace's iptables rule count changed during the run (${rootRules} -> ${after}); the harness writes none, check who did`);
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    if (runState.interrupted) return;
    runState.interrupted = true;
    progress(`${sig}: stopping and cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    progress(`mode ${o.quick ? 'quick' : 'full'}: systems ${o.systems.join(',')}; ${o.runs} interleaved runs per figure; throughput ${o.seconds} s, latency and connection rate ${Math.max(1, Math.round(o.seconds / 2))} s`);
    let limit: LimitWorld | undefined;
    // the overlay scenario builds worlds of its own: with --only overlay, the single-host worlds are not needed
    const singleHost = !o.only || [...o.only].some((x) => x !== 'overlay');
    // nor Docker with only the scenarios that do not measure it
    const dockerUsed = !o.only || [...o.only].some((x) => x !== 'overlay' && x !== 'drop-flood');
    if (o.systems.includes('limit') && singleHost) {
      progress('building the limit topology (veth pair; veth + bridge, routed uplink)');
      limit = await LimitWorld.build(topo);
    } else if (!o.systems.includes('limit')) skipped.push({ system: 'limit', why: 'not asked for (--systems): no ratios' });
    for (const dp of BERTH_DATAPATHS) {
      if (!o.systems.includes(dp)) {
        skipped.push({ system: `berth-${dp}`, why: 'not asked for (--systems)' });
        continue;
      }
      if (!singleHost) continue;
      progress(`building berth-${dp} (berthd --datapath ${dp} in ${PREFIX}${dp}-host)`);
      let w: BerthWorld | undefined;
      try {
        await BerthWorld.build(topo, dp, (x) => berths.push((w = x)), o.cpuProf ? { cpuProf: o.cpuProf } : {});
      } catch (e) {
        const why = `berthd --datapath ${dp} refused to start: ${refusal(e)}`;
        progress(`SKIPPING berth-${dp}: ${why}`);
        skipped.push({ system: `berth-${dp}`, why });
        if (w) {
          berths.splice(berths.indexOf(w), 1);
          await w.destroy().catch(() => undefined);
        }
      }
    }
    for (const [sys, proxy] of [['docker', true], ['docker-noproxy', false]] as const) {
      if (!o.systems.includes(sys)) {
        if (sys === 'docker') skipped.push({ system: sys, why: 'not asked for (--systems)' });
        continue;
      }
      if (!dockerUsed) {
        skipped.push({ system: sys, why: 'not measured in the scenarios asked for (overlay, drop-flood: berth only)' });
        continue;
      }
      const which = (await tryRun('sh', ['-c', 'command -v dockerd'])).stdout.trim();
      if (!which) {
        skipped.push({ system: sys, why: 'dockerd is not installed (scripts/bench-tools.sh installs docker.io)' });
        progress(`SKIPPING ${sys}: dockerd is not installed`);
        continue;
      }
      progress(`building ${sys} (dockerd 20.10, userland proxy ${proxy ? 'on, as shipped' : 'off'}, in ${PREFIX}${proxy ? 'd' : 'dn'}host)`);
      let w: DockerWorld | undefined;
      try {
        await DockerWorld.build(topo, sys, { userlandProxy: proxy }, (x) => dockers.push((w = x)));
      } catch (e) {
        const why = `dockerd did not start: ${(e as Error).message.slice(0, 400)}`;
        progress(`SKIPPING ${sys}: ${why}`);
        skipped.push({ system: sys, why });
        if (w) {
          dockers.splice(dockers.indexOf(w), 1);
          await w.destroy().catch(() => undefined);
        }
      }
    }
    for (const sys of PODMAN_SYSTEMS) {
      if (!o.systems.includes(sys)) continue;
      if (!dockerUsed) {
        skipped.push({ system: sys, why: 'not measured in the scenarios asked for (overlay, drop-flood: berth only)' });
        continue;
      }
      const backend = sys === 'podman-berth' ? 'the CNI backend calling berth-cni, berthd --datapath bpf' : 'netavark, as it ships';
      progress(`building ${sys} (podman 4.3, ${backend}, in ${PREFIX}${sys === 'podman-berth' ? 'pb' : 'pn'}host)`);
      let w: PodmanWorld | undefined;
      try {
        await PodmanWorld.build(topo, sys, (x) => podmans.push((w = x)));
      } catch (e) {
        const why = `podman did not come up: ${(e as Error).message.slice(0, 400)}`;
        progress(`SKIPPING ${sys}: ${why}`);
        skipped.push({ system: sys, why });
        if (w) {
          podmans.splice(podmans.indexOf(w), 1);
          await w.destroy().catch(() => undefined);
        }
      }
    }
    const m = await meta(berths);
    for (const b of berths) progress(`${b.name}: ${JSON.stringify((m.berth as Record<string, unknown>)[b.name])}`);

    const want = (id: string) => !o.only || o.only.has(id);
    const ctls = controlSystems(berths, dockers, podmans);
    const scenarios: ScenarioResult[] = [];

    // The control-plane scenarios run first, on an idle host with an empty conntrack table
    // (after the traffic scenarios the iptables datapath's conntrack flushes take longer).
    if (want('attach')) scenarios.push(await attachSequential(ctls, o));
    if (want('concurrent-attach')) scenarios.push(await attachConcurrent(ctls, o));
    if (want('publish-scale')) scenarios.push(await publishScale(ctls, o));

    // Traffic: the benchmark pairs.
    const peers = await makePeers(berths, dockers, limit, servers, podmans);
    scenarios.push(...(await trafficScenarios(peers, limit, o, want)));
    await servers.stopAll();
    // latency and connection rate settle faster than throughput: half the time (at least 1 s)
    const TL = Math.max(1, Math.round(o.seconds / 2));

    if (want('overlay')) scenarios.push(await overlayScenario(topo, overlays, o));
    if (want('drop-flood')) scenarios.push(await dropFlood(topo, berths, peers, o));

    if (want('ports-10k')) scenarios.push(await manyPorts(berths, dockers, limit, o, TL));
    if (want('policy-scale')) scenarios.push(await policyScale(berths, o, TL));

    // Output
    if (runState.interrupted) throw new Error('interrupted');
    m.loadavgAtEnd = (await readFile('/proc/loadavg', 'utf8')).trim();
    const result = { meta: m, command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), mode: o.quick ? 'quick' : 'full', runs: o.runs, seconds: o.seconds, systems: o.systems, notMeasured: skipped, scenarios };
    await writeResults(o.out, result, scenarios, o.reference);
    return 0;
  } catch (e) {
    for (const b of berths) if (b.daemon) process.stderr.write(`bench: ${b.name}: berthd ${b.daemon.running ? 'is running' : `exited (${b.daemon.proc.exitCode ?? b.daemon.proc.signalCode})`}; its last log lines:\n${b.daemon.logs.split('\n').slice(-10).join('\n')}\n`);
    for (const d of dockers) process.stderr.write(`bench: ${d.name}: dockerd's last log lines:\n${d.logs.split('\n').slice(-10).join('\n')}\n`);
    throw e;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
