/** The scale scenarios: connection rate to the first and last of many published ports, and policy with many link pairs. */
import { PORTS, Servers, nsRun, waitPort } from '../lib/tools.js';
import { treeCpuMs } from '../lib/procs.js';
import type { Opts } from '../lib/options.js';
import { BERTH, LIMIT, clientSysctls, type BerthWorld, type LimitWorld } from '../lib/world.js';
import { DOCKER, type DockerWorld } from '../lib/docker.js';
import { failed, figure, msFigure, progress, rate, skipped, type ScenarioResult, type SystemRun } from '../lib/figure.js';

/** The first published port: 30000, or 12000 where 30000 leaves too few ports below 65536 (50,000 ports; 11111 is sockperf's). */
const portBase = (n: number) => (30000 + n <= 65536 ? 30000 : 12000);

/** Connection rate to the first and the last of many published ports (all to one nginx), against the routed limit. */
export async function manyPorts(berths: BerthWorld[], dockers: DockerWorld[], limit: LimitWorld | undefined, o: Opts, TL: number): Promise<ScenarioResult> {
  const servers = new Servers();
  const runs: SystemRun[] = [];
  const made: (() => Promise<void>)[] = [];
  const notMeasured: { system: string; why: string }[] = [];
  const createMs: { system: string; samples: number[] }[] = [];
  const removeMs: { system: string; samples: number[] }[] = [];
  try {
    if (limit) {
      await servers.startNginx('limit', limit.path('lc2'));
      await waitPort(limit.path('lext'), LIMIT.c2, PORTS.http);
      runs.push(rate('limit-routed', limit.path('lext'), LIMIT.c2, TL));
    }
    for (const b of berths) try {
      const n = o.manyPorts;
      const base = portBase(n);
      progress(`ports-10k · ${b.name}: a sandbox with ${n.toLocaleString('en')} single published ports (${base}.. → 8080)`);
      const t = performance.now();
      const sb = await b.createSandbox('many', Array.from({ length: n }, (_, i) => `${base + i}:${PORTS.http}`));
      createMs.push({ system: b.name, samples: [performance.now() - t] }, { system: `${b.name}, berthd's share`, samples: [sb.serverTiming.total ?? NaN] });
      progress(`ports-10k · ${b.name}: created in ${(performance.now() - t).toFixed(0)} ms; berthd's share by phase ${JSON.stringify(sb.serverTiming)}`);
      made.push(async () => {
        const t = performance.now();
        const st = await b.removeSandboxTimed(sb.id);
        removeMs.push({ system: b.name, samples: [performance.now() - t] }, { system: `${b.name}, berthd's share`, samples: [st.total ?? NaN] });
        progress(`ports-10k · ${b.name}: removed in ${(performance.now() - t).toFixed(0)} ms; berthd's share by phase ${JSON.stringify(st)}`);
      });
      await servers.startNginx(`${b.name}/many`, sb.netns);
      for (const port of [base, base + n - 1]) await waitPort(b.path('ext'), BERTH.up, port);
      runs.push(rate(`${b.name}, first port (${base})`, b.path('ext'), BERTH.up, TL, () => treeCpuMs([b.pid!]), base));
      runs.push(rate(`${b.name}, last port (${base + n - 1})`, b.path('ext'), BERTH.up, TL, () => treeCpuMs([b.pid!]), base + n - 1));
    } catch (e) {
      notMeasured.push(failed('ports-10k', b.name, e));
    }
    for (const d of dockers) try {
      const n = o.dockerPorts;
      const why = d.userlandProxy
        ? `${o.manyPorts.toLocaleString('en')} would start ${2 * o.manyPorts} docker-proxy processes (about 3 MB RSS each)`
        : `dockerd adds each port with several iptables calls, minutes for ${o.manyPorts.toLocaleString('en')}`;
      progress(`ports-10k · ${d.name}: a container with ${n} single published ports (30000.. → 8080); not ${o.manyPorts.toLocaleString('en')}: ${why}`);
      notMeasured.push({ system: `${d.name} at ${o.manyPorts.toLocaleString('en')} ports`, why: `measured at ${n} ports only (--docker-ports): ${why}` });
      const t = performance.now();
      const c = await d.inspect(await d.createContainer('many', Array.from({ length: n }, (_, i) => `${30000 + i}:${PORTS.http}`)));
      createMs.push({ system: `${d.name} (${n} ports)`, samples: [performance.now() - t] });
      made.push(async () => {
        const t = performance.now();
        await d.removeContainer(c);
        removeMs.push({ system: `${d.name} (${n} ports)`, samples: [performance.now() - t] });
      });
      await clientSysctls(c.netns);
      await servers.startNginx(`${d.name}/many`, c.netns);
      for (const port of [30000, 30000 + n - 1]) await waitPort(d.path('ext'), DOCKER.up, port);
      runs.push(rate(`${d.name}, first port (30000)`, d.path('ext'), DOCKER.up, TL, () => treeCpuMs([d.dockerdPid], d.dir), 30000));
      runs.push(rate(`${d.name}, last of ${n} (${30000 + n - 1})`, d.path('ext'), DOCKER.up, TL, () => treeCpuMs([d.dockerdPid], d.dir), 30000 + n - 1));
    } catch (e) {
      notMeasured.push(failed('ports-10k', d.name, e));
    }
    const f = await figure('ports-10k', 'TCP connection rate', 'conn/s', true, limit ? 'limit-routed' : '', runs, o.runs, 'connection', notMeasured);
    await servers.stopAll();
    for (const undo of made.splice(0)) await undo();
    return {
      id: 'ports-10k', title: `Connection rate to the first and the last of ${o.manyPorts.toLocaleString('en')} published ports`, notMeasured: [...notMeasured, ...skipped],
      method: `one sandbox (container) with ${o.manyPorts.toLocaleString('en')} single published ports from ${portBase(o.manyPorts)} all to its nginx on ${PORTS.http} (Docker: ${o.dockerPorts}); wrk from ext to the uplink address at the first and at the last port; limit-routed: ext to the server at its own address. Flat means the last port costs what the first does`,
      figures: [f, msFigure('create with all ports published', createMs), msFigure('remove with all ports published', removeMs)],
    };
  } finally {
    await servers.stopAll();
    for (const undo of made) await undo().catch((e: unknown) => progress(`ports-10k: cleanup: ${(e as Error).message}`));
  }
}

/** icc=false network with T targets × L linkers link pairs: connection rate against an icc=true network, and one link added. */
export async function policyScale(berths: BerthWorld[], o: Opts, TL: number): Promise<ScenarioResult> {
  const side = Math.max(1, Math.round(Math.sqrt(o.policyPairs)));
  const targets = side;
  const linkers = Math.max(1, Math.round(o.policyPairs / side));
  const pairs = targets * linkers;
  const runs: SystemRun[] = [];
  const update: { system: string; samples: number[] }[] = [];
  const servers = new Servers();
  const notMeasured: { system: string; why: string }[] = [{ system: 'docker', why: "not measured: Docker's links with icc=false need a dockerd started with --icc=false (legacy links on the default bridge); not built" }];
  try {
    for (const b of berths) try {
      await b.createNetwork('pol', { icc: 'false' });
      await b.createNetwork('open');
      // policy-scale runs last: its hundreds of sandboxes are left to BerthWorld.destroy(), which stops berthd and removes
      // them with its namespaces (one API call each would take minutes with the iptables datapath)
      const o1 = await b.createSandbox('open-1', [], { network: 'open' });
      const o2 = await b.createSandbox('open-2', [], { network: 'open', expose: [String(PORTS.http)] });
      for (const s of [o1]) await clientSysctls(s.netns);
      await servers.startNginx(`${b.name}/open-2`, o2.netns);
      progress(`policy-scale · ${b.name}: ${targets} targets (expose ${PORTS.http}) on an icc=false network`);
      const ts = [];
      for (let i = 0; i < targets; i++) ts.push(await b.createSandbox(`pt${i}`, [], { network: 'pol', expose: [String(PORTS.http)] }));
      // one link added with only that pair in place (well: the targets exist, no links yet)
      const probe = async (): Promise<number> => {
        const t = performance.now();
        const p = await b.createSandbox(`probe-${Math.random().toString(36).slice(2, 8)}`, [], { network: 'pol', links: ['pt0'] });
        const ms = performance.now() - t;
        await b.removeSandbox(p.id);
        return ms;
      };
      const probes0: number[] = [];
      for (let i = 0; i < 3; i++) probes0.push(await probe());
      progress(`policy-scale · ${b.name}: ${linkers} linkers, each linked to all ${targets} targets (${pairs.toLocaleString('en')} pairs)`);
      let last;
      const t0 = performance.now();
      for (let i = 0; i < linkers; i++) {
        last = await b.createSandbox(`pl${i}`, [], { network: 'pol', links: ts.map((_, k) => `pt${k}`) });
        if ((i + 1) % 10 === 0) progress(`policy-scale · ${b.name}: ${i + 1}/${linkers} linkers (${((i + 1) * targets).toLocaleString('en')} pairs), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      const probesN: number[] = [];
      for (let i = 0; i < 3; i++) probesN.push(await probe());
      update.push({ system: `${b.name}, 0 pairs`, samples: probes0 }, { system: `${b.name}, ${pairs.toLocaleString('en')} pairs`, samples: probesN });
      const target = ts[ts.length - 1]!;
      await clientSysctls(last!.netns);
      await servers.startNginx(`${b.name}/pt-last`, target.netns);
      await waitPort(o1.netns, o2.ip, PORTS.http);
      await waitPort(last!.netns, target.ip, PORTS.http);
      // the policy is real: a target cannot reach another target
      const blocked = await nsRun(ts[0]!.netns, 'bash', ['-c', `exec 3<>/dev/tcp/${target.ip}/${PORTS.http}`], 2000).then(() => false, () => true);
      if (!blocked) throw new Error(`policy-scale: ${b.name}: pt0 reached pt${targets - 1} on the icc=false network without a link; the measurement would not be of a policy`);
      runs.push(rate(`${b.name}, no policy (icc=true)`, o1.netns, o2.ip, TL, () => treeCpuMs([b.pid!])));
      runs.push(rate(`${b.name}, ${pairs.toLocaleString('en')} link pairs (last linker → last target)`, last!.netns, target.ip, TL, () => treeCpuMs([b.pid!])));
    } catch (e) {
      notMeasured.push(failed('policy-scale', b.name, e));
    }
    const f = await figure('policy-scale', 'TCP connection rate', 'conn/s', true, '', runs, o.runs, 'connection', notMeasured);
    // ratio to "no policy" of the same system
    for (const s of f.systems) {
      const base = f.systems.find((x) => x.system === `${s.system.split(', ')[0]}, no policy (icc=true)`);
      if (base && base !== s) s.ratio = s.summary.median / base.summary.median;
    }
    return {
      id: 'policy-scale', title: `Policy scale: ${pairs.toLocaleString('en')} link pairs on an icc=false network`,
      notMeasured: [...notMeasured, ...skipped],
      method: `an icc=false network with ${targets} targets (each exposing ${PORTS.http}) and ${linkers} linkers each linked to every target (${pairs.toLocaleString('en')} pairs, one accept rule each); wrk from the last linker to the last target, against two sandboxes on an icc=true network of the same berthd (ratio is to that). One link added: POST /v1/sandboxes with one link, timed at the client, with no pairs and with all pairs in place (iptables: that includes re-applying every rule)`,
      figures: [f, msFigure('one link added (create a sandbox with one link)', update)],
    };
  } finally {
    await servers.stopAll();
  }
}
