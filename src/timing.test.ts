import { describe, expect, it } from 'vitest';
import { Timing, parseServerTiming, phase, timed, withTiming } from './timing.js';

describe('request timing', () => {
  it('phases land in the request they ran for, across awaits, summed by name; nothing outside a request', async () => {
    phase('outside', 5);
    const a = new Timing();
    const b = new Timing();
    await Promise.all([
      withTiming(a, async () => {
        await timed('store', () => new Promise((r) => setTimeout(r, 5)));
        phase('store', 1);
        phase('veth', 2);
      }),
      withTiming(b, async () => {
        await new Promise((r) => setTimeout(r, 1));
        phase('netns', 3);
      }),
    ]);
    expect([...a.phases.keys()]).toEqual(['store', 'veth']);
    expect(a.phases.get('store')).toBeGreaterThanOrEqual(5);
    expect([...b.phases]).toEqual([['netns', 3]]);
    const h = parseServerTiming(a.header());
    expect(Object.keys(h)).toEqual(['store', 'veth', 'total']);
    expect(h.veth).toBe(2);
    expect(h.total).toBeGreaterThanOrEqual(h.store!);
  });

  it('parses a Server-Timing header, ignoring what is not name;dur=N', () => {
    expect(parseServerTiming('queue;dur=0.01, datapath.maps;dur=2.5, junk, total;dur=10')).toEqual({ queue: 0.01, 'datapath.maps': 2.5, total: 10 });
    expect(parseServerTiming(undefined)).toEqual({});
  });
});
