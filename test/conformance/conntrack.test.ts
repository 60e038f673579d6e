/**
 * Conntrack entries keyed on a published port's front end are flushed when
 * the publish is added, removed or its sandbox replaced. One UDP client in ext
 * keeps sending from ONE fixed source port to host:PORT the whole time (the
 * same 5-tuple, so the same conntrack entry unless berth deletes it):
 *   1. before the publish it reaches the host's own listener on PORT, and the
 *      entry for that (un-translated) flow is seen in conntrack; the listener
 *      then stops (berth refuses to publish a port a program uses), the
 *      client's datagrams keep the entry alive;
 *   2. `berth run -p PORT:PORT/udp` a sandbox: the same socket reaches it
 *      within a second (without the flush, the refreshed entry would keep the
 *      flow on the host for as long as the client sends);
 *   3. the sandbox is removed: the entry DNAT-ed to its address (seen before)
 *      would black-hole the flow; the same socket reaches the host (listening
 *      again) again;
 *   4. a new sandbox with another address on the same port: reached again.
 * Everything runs in test-made namespaces (the conntrack table looked at is
 * the test host's).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import type { SandboxView } from '../../src/api/views.js';
import { UPLINK } from '../../harness/berthd.js';
import { Agent, World } from '../helpers/conformance.js';
import { deleteLines, filteredLines, parseEntries } from '../../src/datapath/iptables/conntrack.js';
import { changedFronts, resolveDatapath, type DpPublishSpec } from '../../src/datapath/desired.js';
import type { DesiredDatapath } from '../../src/datapath/datapath.js';

const PORT = 5353;
const CLIENT_PORT = 40999;
const SB1 = '10.96.0.10';
const SB2 = '10.96.0.20';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends a datagram every 50 ms from one socket bound to CLIENT_PORT; prints every reply with its arrival time. */
const CLIENT = `
const dgram = require('node:dgram');
const [host, port, sport] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => process.stdout.write(JSON.stringify({ t: Date.now(), from: r.address, fromPort: r.port, reply: JSON.parse(m.toString()) }) + '\\n'));
s.on('error', () => undefined);
s.bind({ port: Number(sport), address: '0.0.0.0' }, () => {
  process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
  setInterval(() => s.send('tok:', Number(port), host, () => undefined), 50);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

interface Reply {
  t: number;
  from: string;
  fromPort: number;
  reply: { by: string; peer: string; peerPort: number; localPort: number };
}

interface CtEntry {
  origSrc: string;
  origDst: string;
  sport: number;
  dport: number;
  replySrc: string;
  replySport: number;
}

describe('conntrack entries of a published port follow the publish (iptables)', () => {
  let w: World;
  let client: ChildProcess | undefined;
  const replies: Reply[] = [];

  /** The host namespace's UDP conntrack entries of the client's flow. */
  async function entries(): Promise<CtEntry[]> {
    const { stdout } = await run('ip', ['netns', 'exec', w.h.ns, 'conntrack', '-L', '-p', 'udp', '--orig-port-src', String(CLIENT_PORT), '--orig-port-dst', String(PORT)]);
    return stdout.split('\n').filter((l) => l.startsWith('udp')).map((l) => {
      const src = [...l.matchAll(/src=(\S+)/g)].map((m) => m[1]!);
      const dst = [...l.matchAll(/dst=(\S+)/g)].map((m) => m[1]!);
      const sport = [...l.matchAll(/sport=(\d+)/g)].map((m) => Number(m[1]));
      const dport = [...l.matchAll(/dport=(\d+)/g)].map((m) => Number(m[1]));
      return { origSrc: src[0]!, origDst: dst[0]!, sport: sport[0]!, dport: dport[0]!, replySrc: src[1]!, replySport: sport[1]! };
    });
  }

  /** ms from @since until the first reply answered by @by; fails after @ms. */
  async function firstReplyBy(by: string, since: number, ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = replies.find((x) => x.t >= since && x.reply.by === by);
      if (r) {
        // The same socket, seen by the server with its address and fixed port.
        expect(r.reply.peer, `${by} sees the client's address`).toBe(UPLINK.ext);
        expect(r.reply.peerPort, `${by} sees the client's fixed source port`).toBe(CLIENT_PORT);
        expect([r.from, r.fromPort], 'the reply comes from the front end').toEqual([UPLINK.host, PORT]);
        return r.t - since;
      }
      if (Date.now() > deadline) {
        const last = replies.at(-1);
        throw new Error(`no reply by ${by} within ${ms} ms (last reply: ${last ? `${last.reply.by}, ${Date.now() - last.t} ms ago` : 'none'}; entries: ${JSON.stringify(await entries())})`);
      }
      await sleep(20);
    }
  }

  /** Replies in the last @ms all came from @by (the flow is steadily there). */
  function steadyAt(by: string, ms = 300): boolean {
    const recent = replies.filter((x) => x.t >= Date.now() - ms);
    return recent.length > 0 && recent.every((x) => x.reply.by === by);
  }

  async function runSandbox(name: string, ip: string): Promise<Agent> {
    await w.h.berth('run', '-d', '--name', name, '--network', 'n1', '--ip', ip, '-p', `${PORT}:${PORT}/udp`, '--', 'sleep', 'infinity');
    const [v] = JSON.parse((await w.h.berth('inspect', name)).stdout) as SandboxView[];
    expect(v!.NetworkSettings.Networks.n1!.IPAddress).toBe(ip);
    const a = await Agent.start(name, v!.NetworkSettings.SandboxKey);
    w.agents.set(name, a);
    await a.listen('udp', PORT);
    return a;
  }

  beforeAll(async () => {
    w = await World.build('iptables', {
      networks: [{ name: 'n1', args: ['--subnet', '10.96.0.0/24'] }],
      sandboxes: [{ name: 'idle', network: 'n1' }],
      listen: { tcp: [], udp: [] },
    });
    // The host serves the port itself before it is published.
    await w.agent('host').listen('udp', PORT);
    const c = spawn('nsenter', [`--net=${w.topo.nsPath('ext')}`, '--', process.execPath, '-e', CLIENT, UPLINK.host, String(PORT), String(CLIENT_PORT)], { stdio: ['pipe', 'pipe', 'inherit'] });
    client = c;
    await new Promise<void>((resolve, reject) => {
      c.once('exit', (code) => reject(new Error(`client exited (${code})`)));
      createInterface({ input: c.stdout! }).on('line', (line) => {
        const m = JSON.parse(line) as Reply & { ready?: boolean };
        if (m.ready) resolve();
        else replies.push(m);
      });
    });
  }, 60_000);

  afterAll(async () => {
    if (process.env.BERTH_TEST_LOGS && w) console.log(w.h.logs);
    if (client) {
      client.stdin!.end();
      client.kill('SIGKILL');
    }
    await w?.destroy();
  }, 60_000);

  it('a flow that reached the host before the publish reaches the sandbox once it is published', async () => {
    await firstReplyBy('host', 0, 3000);
    await sleep(300);
    expect(steadyAt('host')).toBe(true);
    // The entry that would keep the flow on the host: one 5-tuple, not translated.
    const stale = await entries();
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ origSrc: UPLINK.ext, origDst: UPLINK.host, sport: CLIENT_PORT, dport: PORT, replySrc: UPLINK.host, replySport: PORT });
    // A port a program serves cannot be published: the host stops serving it; the flow's entry stays.
    await w.agent('host').unlisten('udp', PORT);
    await sleep(200);
    expect(await entries()).toMatchObject([{ replySrc: UPLINK.host, replySport: PORT }]);

    const t0 = Date.now();
    await runSandbox('sb1', SB1);
    const ready = Date.now();
    const ms = await firstReplyBy('sb1', ready, 1000);
    console.log(`sb1 reached ${ms} ms after its listener was up (${ready - t0} ms for berth run and the listener)`);
    await sleep(300);
    expect(steadyAt('sb1'), 'every reply now from sb1').toBe(true);
    const now = await entries();
    expect(now).toHaveLength(1);
    expect(now[0]).toMatchObject({ origSrc: UPLINK.ext, origDst: UPLINK.host, sport: CLIENT_PORT, dport: PORT, replySrc: SB1, replySport: PORT });
  }, 30_000);

  it('removing the sandbox does not black-hole the flow at its old address, and a new sandbox on the same port gets it', async () => {
    // The entry DNAT-ed to sb1 is what would black-hole the flow once sb1 is gone.
    expect((await entries())[0]).toMatchObject({ replySrc: SB1 });
    w.agent('sb1').stop();
    w.agents.delete('sb1');
    const t0 = Date.now();
    await w.h.berth('rm', '-f', 'sb1');
    // The port is free again: the host serves it, as before the publish.
    await w.agent('host').listen('udp', PORT);
    const removed = Date.now();
    const back = await firstReplyBy('host', removed, 1000);
    console.log(`host reached again ${back} ms after 'berth rm' returned (${removed - t0} ms for it)`);
    await sleep(300);
    expect(steadyAt('host')).toBe(true);
    // Again an entry keeping the flow on the host, before the new publish.
    expect(await entries()).toMatchObject([{ replySrc: UPLINK.host, replySport: PORT }]);
    await w.agent('host').unlisten('udp', PORT);

    await runSandbox('sb2', SB2);
    const ready = Date.now();
    const ms = await firstReplyBy('sb2', ready, 1000);
    console.log(`sb2 (${SB2}, replacing ${SB1}) reached ${ms} ms after its listener was up`);
    await sleep(300);
    expect(steadyAt('sb2')).toBe(true);
    expect(await entries()).toMatchObject([{ origDst: UPLINK.host, sport: CLIENT_PORT, replySrc: SB2, replySport: PORT }]);
  }, 30_000);
});

describe('which conntrack entries a change flushes', () => {
  const net = { id: 'n', name: 'n', bridge: 'bb-n', subnet4: '10.0.0.0/24', internal: false, icc: true, masquerade: true };
  const pub = (o: Partial<DpPublishSpec> = {}): DpPublishSpec => ({ sandbox: 's', network: 'n', hostIp: '', hostPort: 5353, count: 1, containerV4: '10.0.0.2', containerPort: 53, proto: 'udp', allow: [], ...o });
  const dp = (...publishes: DpPublishSpec[]): DesiredDatapath => resolveDatapath({ networks: [net], endpoints: [], publishes, links: [] });

  it('added, removed and changed publishes; unchanged ones are left alone', () => {
    const a = pub();
    const b = pub({ hostPort: 8080, proto: 'tcp', containerPort: 80 });
    expect(changedFronts(dp(a, b), dp(a, b))).toEqual([]);
    expect(changedFronts(dp(a), dp(a, b))).toEqual([{ proto: 'tcp', hostIp: '', hostPort: 8080, count: 1 }]);
    expect(changedFronts(dp(a, b), dp(b))).toEqual([{ proto: 'udp', hostIp: '', hostPort: 5353, count: 1 }]);
    // a replaced sandbox (new address), a new allow-list: the same front end, another translation
    expect(changedFronts(dp(a), dp(pub({ sandbox: 's2', containerV4: '10.0.0.3' })))).toHaveLength(1);
    expect(changedFronts(dp(a), dp(pub({ allow: ['192.0.2.0/24'] })))).toHaveLength(1);
    // first apply and teardown: everything
    expect(changedFronts(undefined, dp(a, b))).toHaveLength(2);
    expect(changedFronts(dp(a, b), undefined)).toHaveLength(2);
  });

  it('a few ports: filtered deletes, both families for every address, one for a bound address', () => {
    expect(filteredLines([{ proto: 'udp', hostIp: '', hostPort: 5353, count: 1 }])).toEqual([
      '-D -f ipv4 -p udp --orig-port-dst 5353',
      '-D -f ipv6 -p udp --orig-port-dst 5353',
    ]);
    expect(filteredLines([{ proto: 'udp', hostIp: '198.18.0.1', hostPort: 9000, count: 2 }])).toEqual([
      '-D -f ipv4 -p udp --orig-port-dst 9000 --orig-dst 198.18.0.1',
      '-D -f ipv4 -p udp --orig-port-dst 9001 --orig-dst 198.18.0.1',
    ]);
  });

  it('many ports: deletes exactly the entries whose original destination is a changed front end, by their tuple', () => {
    const v4 = parseEntries([
      'udp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=40999 dport=5353 [UNREPLIED] src=198.18.0.1 dst=198.18.0.2 sport=5353 dport=40999 mark=0 use=1',
      'tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.18.0.1 sport=51000 dport=9001 src=10.0.0.2 dst=198.18.0.2 sport=91 dport=51000 [ASSURED] mark=0 use=1',
      'tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.18.0.7 sport=51001 dport=9001 src=198.18.0.7 dst=198.18.0.2 sport=9001 dport=51001 [ASSURED] mark=0 use=1',
      'icmp     1 29 src=198.18.0.2 dst=198.18.0.1 type=8 code=0 id=7 src=198.18.0.1 dst=198.18.0.2 type=0 code=0 id=7 mark=0 use=1',
    ].join('\n'), 'ipv4');
    expect(v4).toHaveLength(3);
    const v6 = parseEntries('udp      17 29 src=fd00::2 dst=fd00::1 sport=4000 dport=5353 [UNREPLIED] src=fd00::1 dst=fd00::2 sport=5353 dport=4000 mark=0 use=1', 'ipv6');
    expect(deleteLines([...v4, ...v6], [{ proto: 'udp', hostIp: '', hostPort: 5353, count: 1 }])).toEqual([
      '-D -f ipv4 -p udp -s 198.18.0.2 -d 198.18.0.1 --sport 40999 --dport 5353',
      '-D -f ipv6 -p udp -s fd00::2 -d fd00::1 --sport 4000 --dport 5353',
    ]);
    // a range of 1,000 ports bound to one address: only the entry to that address inside the range
    expect(deleteLines(v4, [{ proto: 'tcp', hostIp: '198.18.0.1', hostPort: 9000, count: 1000 }])).toEqual([
      '-D -f ipv4 -p tcp -s 198.18.0.2 -d 198.18.0.1 --sport 51000 --dport 9001',
    ]);
    expect(deleteLines(v4, [{ proto: 'udp', hostIp: '', hostPort: 5354, count: 1 }])).toEqual([]);
  });
});
