/**
 * Many front ends, one back end (eBPF datapath): 2,000 published ports all
 * DNAT-ed to one sandbox's port 80, and one outside client that reuses its
 * source ports across them. Every such connection shares the sandbox-side
 * tuple (sandbox:80 <-> client:sport) with earlier ones made through other
 * front ports, and the sandbox still holds those in TIME_WAIT (its server
 * closes first, as an HTTP server with "Connection: close" does; Linux keeps
 * TIME_WAIT 60 s). The client's kernel picks ISN and timestamp offset per
 * 4-tuple, front port included, so a SYN handed to the sandbox on such a
 * tuple is refused by PAWS: the sandbox answers with the old connection's
 * ACK, the client resets it and waits a second to retransmit its SYN.
 *
 * Rounds of connections, every one from a fixed source port (one per slot):
 *   1. slot i to front port A+i;
 *   2. 12 s later (past any short closing timeout, within the sandbox's
 *      TIME_WAIT), the same source ports to other front ports B+i;
 *   3. at once, the same source ports to yet other front ports C+i;
 *   4. 12 s later, round 1's client tuples again (slot i to A+i).
 * Every connection must complete, and the client's namespace must count no
 * SYN retransmission and no reset (both counters are first shown to count).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { UPLINK } from '../../harness/berthd.js';
import { World } from '../helpers/conformance.js';

const FRONT = 30000;
const FRONTS = 2000;
const SLOTS = 500;
const SPORT = 41000;
const PAUSE_MS = 12_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One connection per [sport, port] pair, in order: bind the source port,
 * connect, read the sandbox's answer to its end, close. Prints one JSON line:
 * how many completed, how many took longer than 0.9 s, the failures.
 */
const CLIENT = `
import json, socket, sys, time
host, pairs = sys.argv[1], json.loads(sys.argv[2])
ok, slow, fails = 0, 0, []
for sport, port in pairs:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    t = time.monotonic()
    try:
        s.bind(("${UPLINK.ext}", sport))
        s.connect((host, port))
        buf = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        json.loads(buf)
        ok += 1
        if time.monotonic() - t > 0.9:
            slow += 1
    except Exception as e:
        fails.append("%d->%d: %s" % (sport, port, e))
    finally:
        s.close()
print(json.dumps({"ok": ok, "slow": slow, "fails": fails[:5], "failed": len(fails)}))
`;

/** A SYN nobody answers, and a reset: both counters must move for the checks below to mean anything. */
const PROBE = `
import socket, struct, sys
s = socket.socket(); s.settimeout(1.5)
try:
    s.connect((sys.argv[1], 80))
except Exception:
    pass
s.close()
s = socket.socket(); s.connect((sys.argv[2], int(sys.argv[3])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

interface Round {
  ok: number;
  slow: number;
  failed: number;
  fails: string[];
}

describe('thousands of front ports to one sandbox port, source ports reused across them (bpf)', () => {
  let w: World;
  let ext: string;

  /** TcpExtTCPSynRetrans and TcpOutRsts of the client's namespace. */
  async function counters(): Promise<{ synRetrans: number; outRsts: number }> {
    const { stdout } = await run('nsenter', [`--net=${ext}`, '--', 'cat', '/proc/net/snmp', '/proc/net/netstat']);
    const lines = stdout.split('\n');
    const field = (prefix: string, name: string): number => {
      const i = lines.findIndex((l) => l.startsWith(`${prefix}:`) && l.split(' ').includes(name));
      const names = lines[i]!.split(' ');
      return Number(lines[i + 1]!.split(' ')[names.indexOf(name)]);
    };
    return { synRetrans: field('TcpExt', 'TCPSynRetrans'), outRsts: field('Tcp', 'OutRsts') };
  }

  async function round(fronts: number): Promise<Round> {
    const pairs = Array.from({ length: SLOTS }, (_, i) => [SPORT + i, fronts + i]);
    const { stdout } = await run('nsenter', [`--net=${ext}`, '--', 'python3', '-c', CLIENT, UPLINK.host, JSON.stringify(pairs)], { timeoutMs: 120_000 });
    return JSON.parse(stdout) as Round;
  }

  beforeAll(async () => {
    const publish = Array.from({ length: FRONTS }, (_, i) => ['-p', `${FRONT + i}:80`]).flat();
    w = await World.build('bpf', {
      networks: [{ name: 'fan', args: ['--subnet', '10.89.0.0/24'] }],
      sandboxes: [{ name: 'srv', network: 'fan', args: publish }],
      listen: { tcp: [80], udp: [] },
    });
    ext = w.topo.nsPath('ext');
    // Only for the probe: a route to the sandbox's subnet, whose packets the uplink's program drops.
    await run('ip', ['-n', w.topo.ns('ext'), 'route', 'add', '10.89.0.0/24', 'via', UPLINK.host]);
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('counts an unanswered SYN and a reset in the client namespace (the probe works)', async () => {
    const before = await counters();
    await run('nsenter', [`--net=${ext}`, '--', 'python3', '-c', PROBE, w.sb('srv').v4, UPLINK.host, String(FRONT + FRONTS - 1)], { timeoutMs: 10_000 });
    const after = await counters();
    expect(after.synRetrans).toBeGreaterThan(before.synRetrans);
    expect(after.outRsts).toBeGreaterThan(before.outRsts);
  });

  it('completes every connection without a SYN retransmission or a reset', async () => {
    await sleep(2000); // the probe's sockets are gone
    const before = await counters();
    const rounds: Record<string, Round> = {};
    rounds['1 (A)'] = await round(FRONT);
    await sleep(PAUSE_MS);
    rounds['2 (B, 12 s later)'] = await round(FRONT + SLOTS);
    rounds['3 (C, at once)'] = await round(FRONT + 2 * SLOTS);
    await sleep(PAUSE_MS);
    rounds['4 (A again, 12 s later)'] = await round(FRONT);
    const after = await counters();
    const seen = { rounds, synRetrans: after.synRetrans - before.synRetrans, outRsts: after.outRsts - before.outRsts };
    for (const r of Object.values(rounds)) expect(r.ok, JSON.stringify(seen)).toBe(SLOTS);
    expect(seen.synRetrans, JSON.stringify(seen)).toBe(0);
    expect(seen.outRsts, JSON.stringify(seen)).toBe(0);
  }, 120_000);
});
