import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';
import { parseMetricsAddr } from './server.js';
import type { DatapathStatus } from '../datapath/datapath.js';
import type { State } from '../store/model.js';
import { parsePrometheusText, sampleValue } from '../../test/helpers/promtext.js';

const state = {
  version: 1, instance: 'x',
  networks: { a: { id: 'a', driver: 'bridge' }, b: { id: 'b', driver: 'macvlan' } },
  sandboxes: {
    s1: { mode: 'networks', publish: [{ proto: 'tcp', count: 3 }, { proto: 'udp', count: 1 }] },
    s2: { mode: 'host', publish: [] },
  },
} as unknown as State;

function source(status: () => Promise<DatapathStatus>) {
  return { snapshot: () => state, datapathStatus: status };
}

describe('metrics', () => {
  it('mirror the embedded DNS servers\' counters', async () => {
    const dns = { notAdmitted: 2, rateLimited: 5, forwarded: 9, unanswered: 1 };
    const m = new Metrics(source(async () => ({ kind: 'none' }) as unknown as DatapathStatus), undefined, () => dns);
    let f = parsePrometheusText(await m.render());
    expect(sampleValue(f, 'berth_dns_refused_queries_total', { reason: 'not-admitted' })).toBe(2);
    expect(sampleValue(f, 'berth_dns_refused_queries_total', { reason: 'rate-limited' })).toBe(5);
    expect(sampleValue(f, 'berth_dns_forwarded_queries_total')).toBe(9);
    expect(sampleValue(f, 'berth_dns_unanswered_queries_total')).toBe(1);
    dns.forwarded = 12;
    f = parsePrometheusText(await m.render());
    expect(sampleValue(f, 'berth_dns_forwarded_queries_total')).toBe(12);
  });

  it('mirror the datapath status and the state, and parse as Prometheus text', async () => {
    let icc = 3;
    const m = new Metrics(source(async () => ({
      kind: 'bpf',
      detail: { drops: { icc: { packets: icc, bytes: icc * 60 } }, maps: { berth_dp_ct: { entries: 10, max: 1000 } }, ctFill: 0.01, stats: { CtCreated: 7 } },
    })));
    m.observeApply(0.004, true);
    m.reconciled('start', 'ok');
    let f = parsePrometheusText(await m.render());
    expect(sampleValue(f, 'berth_datapath_info', { datapath: 'bpf' })).toBe(1);
    expect(sampleValue(f, 'berth_datapath_drops_total', { reason: 'icc' })).toBe(3);
    expect(sampleValue(f, 'berth_datapath_drop_bytes_total', { reason: 'icc' })).toBe(180);
    expect(sampleValue(f, 'berth_datapath_map_entries', { map: 'berth_dp_ct' })).toBe(10);
    expect(sampleValue(f, 'berth_datapath_map_max_entries', { map: 'berth_dp_ct' })).toBe(1000);
    expect(sampleValue(f, 'berth_datapath_ct_fill_ratio')).toBe(0.01);
    expect(sampleValue(f, 'berth_datapath_events_total', { event: 'ct_created' })).toBe(7);
    expect(sampleValue(f, 'berth_datapath_apply_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(sampleValue(f, 'berth_datapath_apply_seconds_bucket', { outcome: 'ok', le: '0.005' })).toBe(1);
    expect(sampleValue(f, 'berth_reconcile_runs_total', { kind: 'start', outcome: 'ok' })).toBe(1);
    expect(sampleValue(f, 'berth_reconcile_runs_total', { kind: 'drift', outcome: 'repaired' })).toBe(0);
    expect(sampleValue(f, 'berth_sandboxes', { mode: 'networks' })).toBe(1);
    expect(sampleValue(f, 'berth_sandboxes', { mode: 'host' })).toBe(1);
    expect(sampleValue(f, 'berth_networks', { driver: 'macvlan' })).toBe(1);
    expect(sampleValue(f, 'berth_published_ports', { proto: 'tcp' })).toBe(3);
    expect(sampleValue(f, 'berth_published_ports', { proto: 'sctp' })).toBe(0);
    expect(f.get('berth_datapath_drops_total')?.type).toBe('counter');
    // The datapath's own totals, not increments: a second scrape shows the new total.
    icc = 5;
    f = parsePrometheusText(await m.render());
    expect(sampleValue(f, 'berth_datapath_drops_total', { reason: 'icc' })).toBe(5);
  });

  it('an unreadable datapath status still leaves a valid scrape, and is counted', async () => {
    const m = new Metrics(source(async () => {
      throw new Error('gone');
    }));
    const f = parsePrometheusText(await m.render());
    expect(sampleValue(f, 'berth_datapath_status_errors_total')).toBe(1);
    expect(sampleValue(f, 'berth_networks', { driver: 'bridge' })).toBe(1);
  });

  it('the strict parser refuses what is not the format', () => {
    expect(() => parsePrometheusText('x 1\n')).toThrow(/no TYPE/);
    expect(() => parsePrometheusText('# TYPE x counter\nx{a="1" 1\n')).toThrow(/line 2/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx one\n')).toThrow(/'one' is not a sample value/);
  });
});

describe('--metrics-addr', () => {
  it.each([
    ['127.0.0.1:9464', { host: '127.0.0.1', port: 9464 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
  ])('%s', (a, want) => expect(parseMetricsAddr(a)).toEqual(want));
  it.each([
    ['9464', /expected HOST:PORT/],
    ['localhost:9464', /'localhost' is not an IP address/],
    ['127.0.0.1:0', /port 0 is not from 1 to 65535/],
    ['127.0.0.1:65536', /port 65536/],
    ['::1:9464', /expected HOST:PORT/],
  ])('refuses %s', (a, msg) => expect(() => parseMetricsAddr(a)).toThrow(msg));
});
