/**
 * berthd's Prometheus metrics, scraped as a monitoring system would: GET
 * /metrics over the API's unix socket and over TCP (--metrics-addr), parsed
 * strictly as the text format. A connection refused by icc=false raises the
 * icc drop counter between two scrapes, on both datapaths.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { UPLINK } from '../../harness/berthd.js';
import { World, type WorldSpec } from '../helpers/conformance.js';
import { parsePrometheusText, sampleValue, type Family } from '../helpers/promtext.js';
import { DATAPATHS } from '../helpers/datapaths.js';

const METRICS_PORT = 9464;

const SPEC: WorldSpec = {
  networks: [{ name: 'quiet', args: ['--subnet', '10.95.0.0/24', '-o', 'icc=false'] }],
  sandboxes: [
    { name: 'q1', network: 'quiet', args: ['-p', '8095:7000', '-p', '9000-9002:9000-9002/udp'] },
    { name: 'q2', network: 'quiet' },
  ],
  listen: { tcp: [7000], udp: [] },
};

function scrapeSocket(socket: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: '/metrics', method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.each(DATAPATHS)('metrics on the %s datapath', (datapath) => {
  let w: World;
  const scrape = async (): Promise<Map<string, Family>> => {
    const r = await scrapeSocket(w.h.socket);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(r.text);
  };

  beforeAll(async () => {
    w = await World.build(datapath, SPEC, ['--metrics-addr', `127.0.0.1:${METRICS_PORT}`]);
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('GET /metrics on the socket: the datapath in use, applies, reconcile, sandboxes, networks and published ports', async () => {
    const f = await scrape();
    expect(sampleValue(f, 'berth_datapath_info', { datapath })).toBe(1);
    expect(sampleValue(f, 'berth_datapath_apply_seconds_count', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(sampleValue(f, 'berth_datapath_apply_seconds_sum', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(sampleValue(f, 'berth_reconcile_runs_total', { kind: 'start', outcome: 'ok' })).toBe(1);
    expect(sampleValue(f, 'berth_reconcile_runs_total', { kind: 'start', outcome: 'failed' })).toBe(0);
    expect(sampleValue(f, 'berth_sandboxes', { mode: 'networks' })).toBe(2);
    // the default bridge network and quiet
    expect(sampleValue(f, 'berth_networks', { driver: 'bridge' })).toBe(2);
    expect(sampleValue(f, 'berth_published_ports', { proto: 'tcp' })).toBe(1);
    expect(sampleValue(f, 'berth_published_ports', { proto: 'udp' })).toBe(3);
    if (datapath === 'bpf') {
      expect(sampleValue(f, 'berth_datapath_map_max_entries', { map: 'berth_dp_ct' })).toBe(262144);
      expect(sampleValue(f, 'berth_datapath_map_entries', { map: 'berth_dp_ep_ip' })).toBeGreaterThanOrEqual(2);
      expect(sampleValue(f, 'berth_datapath_ct_fill_ratio')).toBeGreaterThanOrEqual(0);
    }
  });

  it('the periodic drift check is counted as a reconcile run', async () => {
    await new Promise((r) => setTimeout(r, 2500));
    const f = await scrape();
    const drift = ['clean', 'repaired', 'failed'].map((outcome) => sampleValue(f, 'berth_reconcile_runs_total', { kind: 'drift', outcome }) ?? 0);
    expect(drift[0]! + drift[1]!).toBeGreaterThan(0);
    expect(drift[2]).toBe(0);
  });

  it('a connection refused by icc=false raises the icc drop counter', async () => {
    const before = sampleValue(await scrape(), 'berth_datapath_drops_total', { reason: 'icc' }) ?? 0;
    const r = await w.agent('q2').probe('tcp', w.sb('q1').v4, 7000);
    expect(r.ok, 'q2 -> q1 on an icc=false network must not connect').toBe(false);
    const f = await scrape();
    const after = sampleValue(f, 'berth_datapath_drops_total', { reason: 'icc' }) ?? 0;
    // eBPF: the drop reason map; iptables: the counters of the DROP rule in BERTH-ICC.
    expect(after).toBeGreaterThan(before);
    expect(sampleValue(f, 'berth_datapath_drop_bytes_total', { reason: 'icc' })).toBeGreaterThanOrEqual(after * 40);
  });

  it('counts packets per network and per published port (eBPF datapath)', async () => {
    if (datapath !== 'bpf') return;
    const before = await scrape();
    const pub0 = sampleValue(before, 'berth_published_port_packets_total', { proto: 'tcp', port: '8095' }) ?? 0;
    const in0 = sampleValue(before, 'berth_network_packets_total', { network: 'quiet', direction: 'in' }) ?? 0;
    const out0 = sampleValue(before, 'berth_network_packets_total', { network: 'quiet', direction: 'out' }) ?? 0;
    const r = await w.agent('ext').probe('tcp', UPLINK.host, 8095);
    expect(r.reply?.by).toBe('q1');
    const f = await scrape();
    // A TCP connection with a reply: at least the handshake, the reply and the close, both ways.
    expect(sampleValue(f, 'berth_published_port_packets_total', { proto: 'tcp', port: '8095' })).toBeGreaterThanOrEqual(pub0 + 5);
    expect(sampleValue(f, 'berth_published_port_bytes_total', { proto: 'tcp', port: '8095' })).toBeGreaterThan(0);
    expect(sampleValue(f, 'berth_network_packets_total', { network: 'quiet', direction: 'in' })).toBeGreaterThanOrEqual(in0 + 3);
    expect(sampleValue(f, 'berth_network_packets_total', { network: 'quiet', direction: 'out' })).toBeGreaterThanOrEqual(out0 + 2);
  });

  it('--metrics-addr serves the same over TCP, and nothing else', async () => {
    const script = `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then(async (r) => { process.stdout.write(r.status + '\\n' + r.headers.get('content-type') + '\\n' + await r.text()); return fetch('http://127.0.0.1:${METRICS_PORT}/v1/info'); }).then((r) => process.stderr.write(String(r.status)))`;
    const r = await w.agent('host').exec(process.execPath, ['-e', script], 10_000);
    expect(r.code, r.stderr).toBe(0);
    const [status, type, ...rest] = r.stdout.split('\n');
    expect([status, type]).toEqual(['200', expect.stringMatching(/^text\/plain; version=0\.0\.4/)]);
    expect(sampleValue(parsePrometheusText(rest.join('\n')), 'berth_datapath_info', { datapath })).toBe(1);
    expect(r.stderr).toBe('404');
  });

  it('a bad --metrics-addr is refused at start, naming it', async () => {
    // In the test host's namespace, on a state directory that is never made: the address is checked first.
    const bad = await tryRun('nsenter', [`--net=${w.h.nsPath}`, '--', process.execPath, projectPath('dist', 'src', 'daemon', 'berthd.js'), '--state-dir', '/nonexistent-berth-test', '--socket', '/nonexistent-berth-test/s', '--metrics-addr', 'localhost:99'], { timeoutMs: 10_000 });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--metrics-addr: 'localhost:99' is not valid; expected HOST:PORT/);
  });
});
