/** The drop-flood scenario: allowed traffic while the datapath drops a flood. */
import { run } from '../../src/exec.js';
import { PORTS, Servers, nsRun, waitPort } from '../lib/tools.js';
import { machineBusyMs } from '../lib/procs.js';
import type { Opts } from '../lib/options.js';
import type { BerthWorld, benchTopology } from '../lib/world.js';
import { Flooder } from '../lib/flood.js';
import { failed, figure, lat, progress, skipped, tput, type ScenarioResult, type SystemRun } from '../lib/figure.js';
import type { Peer } from './traffic.js';

/** Sum of the datapath's drop counters (GET /v1/datapath, what `berth datapath --format json` shows), or null when it has none. */
export async function dropCount(b: BerthWorld): Promise<number | null> {
  const s = await b.api.call<{ kind: string; detail: { drops?: Record<string, { packets: number }> } }>('GET', '/v1/datapath');
  const d = s.detail?.drops;
  if (!d) return null;
  return Object.values(d).reduce((n, v) => n + Number(v.packets ?? 0), 0);
}

/**
 * Drop flood (issue 9): container ↔ container TCP throughput and latency on berth's default bridge network, quiet and
 * while a sandbox on an icc=false network floods another sandbox it may not reach with UDP; ratio flood / quiet.
 */
/** drop-flood's offered load: low enough that one Node sender keeps it on this machine, with or without the datapath's drop in its softirq. */
export const FLOOD_PPS = 100_000;

export async function dropFlood(topo: ReturnType<typeof benchTopology>, berths: BerthWorld[], peers: Peer[], o: Opts): Promise<ScenarioResult> {
  const servers = new Servers();
  const flooder = new Flooder();
  const notMeasured: { system: string; why: string }[] = [];
  const T = o.seconds;
  const TL = Math.max(1, Math.round(T / 2));
  const tp: SystemRun[] = [];
  const lt: SystemRun[] = [];
  const cpu: SystemRun[] = [];
  const made: (() => Promise<void>)[] = [];
  try {
    // the control: the same sender into a veth whose peer is down (the kernel drops at transmit) in a namespace of its own (no datapath on its way): what the
    // sender's own CPU costs the measurement, apart from the datapath's drops
    let ctl: string | undefined;
    if (berths.length) {
      await topo.addNetns('flood-ctl');
      // a veth whose peer stays down: the kernel drops what is sent to it right at the transmit (no dummy module here)
      const ipc = (...args: string[]) => run('ip', ['-n', topo.ns('flood-ctl'), ...args]);
      await ipc('link', 'add', 'fc0', 'type', 'veth', 'peer', 'name', 'fc1');
      await ipc('addr', 'add', '10.123.0.1/24', 'dev', 'fc0');
      await ipc('link', 'set', 'fc0', 'up');
      await ipc('neigh', 'add', '10.123.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'fc0', 'nud', 'permanent');
      ctl = topo.nsPath('flood-ctl');
    }
    for (const b of berths) try {
      const p = peers.find((x) => x.name === b.name)!;
      await b.createNetwork('flood', { icc: 'false' });
      made.push(() => b.removeNetwork('flood'));
      const f1 = await b.createSandbox('flood-src', [], { network: 'flood' });
      const f2 = await b.createSandbox('flood-dst', [], { network: 'flood', expose: [String(PORTS.http)] });
      made.unshift(() => b.removeSandbox(f1.id), () => b.removeSandbox(f2.id));
      await servers.startNginx(`${b.name}/flood-dst`, f2.netns);
      await servers.startAll(`${b.name}/drop-flood`, p.server.ns);
      await waitPort(p.client, p.server.ip, PORTS.iperf);
      await waitPort(p.client, p.server.ip, PORTS.sockperf);
      // the flood is of dropped packets: the source cannot reach the destination
      const blocked = await nsRun(f1.netns, 'bash', ['-c', `exec 3<>/dev/tcp/${f2.ip}/${PORTS.http}`], 2000).then(() => false, () => true);
      if (!blocked) throw new Error(`flood-src reached flood-dst on the icc=false network: its flood would not be dropped`);
      const startFlood = (control: boolean, seconds: number) => (control ? flooder.start(ctl!, '10.123.0.2', 9, seconds, FLOOD_PPS) : flooder.start(f1.netns, f2.ip, 9, seconds, FLOOD_PPS));
      const floodRun = (inner: SystemRun, seconds: number, control = false): SystemRun => ({
        ...inner,
        system: control ? `${b.name}, sender only (flood into a down veth)` : `${b.name}, under flood`,
        run: async () => {
          const d0 = await dropCount(b);
          const fl = await startFlood(control, seconds + 1);
          await new Promise((r) => setTimeout(r, 300));
          const r = await inner.run();
          const sent = await fl.done;
          const d1 = await dropCount(b);
          const dropPps = d0 !== null && d1 !== null ? (d1 - d0) / sent.seconds : null;
          progress(`drop-flood · ${b.name}${control ? ' (control)' : ''}: flood sent ${Math.round(sent.sent / sent.seconds).toLocaleString('en')} packets/s, datapath drop counters ${dropPps === null ? 'not available' : `+${Math.round(dropPps).toLocaleString('en')}/s`}`);
          return { ...r, extra: { ...r.extra, floodSentPps: sent.sent / sent.seconds, floodSendErrors: sent.errors, datapathDropPps: dropPps } };
        },
      });
      const q1 = tput(`${b.name}, quiet`, p.client, p.server.ip, T, p.cpu);
      const q2 = lat(`${b.name}, quiet`, p.client, p.server.ip, TL, p.cpu);
      tp.push(q1, floodRun(q1, T, true), floodRun(q1, T));
      lt.push(q2, floodRun(q2, TL, true), floodRun(q2, TL));
      // The flood alone, nothing else running: the machine's CPU per packet sent, into the down veth and into the datapath's drop.
      const cost = (control: boolean): SystemRun => ({
        system: control ? `${b.name}, sender only (flood into a down veth)` : `${b.name}, dropped by the datapath`,
        run: async () => {
          // The machine's CPU is read right around the flood, the drop counters (an API call) outside it.
          const d0 = await dropCount(b);
          const m0 = await machineBusyMs();
          const sent = await (await startFlood(control, T)).done;
          const m1 = await machineBusyMs();
          const d1 = await dropCount(b);
          const dropped = d0 !== null && d1 !== null ? d1 - d0 : null;
          progress(`drop-flood · ${b.name}${control ? ' (control)' : ''}: flood alone, ${Math.round(sent.sent / sent.seconds).toLocaleString('en')} packets/s, machine CPU ${(m1 - m0).toFixed(0)} ms${dropped === null ? '' : `, dropped ${dropped.toLocaleString('en')}`}`);
          return { value: ((m1 - m0) * 1e6) / Math.max(1, sent.sent), tx: sent.sent, extra: { floodSentPps: sent.sent / sent.seconds, floodSendErrors: sent.errors, datapathDropPps: dropped === null ? null : dropped / sent.seconds, machineCpuMs: m1 - m0 } };
        },
      });
      cpu.push(cost(true), cost(false));
    } catch (e) {
      notMeasured.push(failed('drop-flood', b.name, e));
    }
    const figs = [
      await figure('drop-flood', 'TCP throughput', 'Gbit/s', true, '', tp, o.runs, 'GB', notMeasured),
      await figure('drop-flood', 'TCP latency p50 (half RTT)', 'µs', false, '', lt, o.runs, 'round trip', notMeasured),
      await figure('drop-flood', 'machine CPU per flood packet, the flood alone', 'ns', false, '', cpu, o.runs, 'packet', notMeasured),
    ];
    for (const f of figs) for (const s of f.systems) {
      // Ratios to quiet; the CPU figure's to the sender alone, so its difference is what the datapath's drop costs per packet.
      const base = f.systems.find((x) => x.system === `${s.system.split(', ')[0]}, ${f.unit === 'ns' ? 'sender only (flood into a down veth)' : 'quiet'}`);
      if (base && base !== s) {
        s.ratio = s.summary.median / base.summary.median;
        s.deltaToLimit = s.summary.median - base.summary.median;
      }
    }
    return {
      id: 'drop-flood', title: 'Drop flood: allowed traffic while the datapath drops a flood', notMeasured: [...notMeasured, ...skipped],
      method: `container → container on berth's default bridge network (the c2c pair), quiet and while a sandbox on an icc=false network of the same berthd sends 64-byte UDP datagrams at ${FLOOD_PPS.toLocaleString('en')} packets/s (one Node process, node:dgram on a connected socket, paced every millisecond) to another sandbox on that network it may not reach (checked: a TCP connect to it fails); the flood starts 0.3 s before the measurement and ends about 0.7 s after it. Control ("sender only"): the same sender at the same rate into a veth whose peer is down (the kernel drops at transmit) in a namespace of its own, so its packets meet no datapath: the difference between "under flood" and "sender only" is the datapath's share, the difference between "sender only" and "quiet" is the sender's CPU. Ratio: to quiet of the same datapath. Third figure: the flood alone (no other load) for ${o.seconds} s, the machine's busy CPU time (/proc/stat) per packet sent, sender only and into the datapath's drop; ratio to the sender only of the same datapath, and its difference is the CPU the datapath spends per dropped packet (receive on the veth and the drop). The flood's send rate and the datapath's drop counters (GET /v1/datapath, what \`berth datapath --format json\` shows: the sum over drop reasons) are in each sample's extra. The sender competes for the 2 CPUs with the load tools: read the throughput ratio with that`,
      figures: figs,
    };
  } finally {
    await flooder.stop();
    await servers.stopAll();
    for (const undo of made) await undo().catch((e: unknown) => progress(`drop-flood: cleanup: ${(e as Error).message}`));
  }
}
