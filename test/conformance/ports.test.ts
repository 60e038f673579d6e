/**
 * Published host ports are held as Docker holds them: a port another program
 * uses is refused, naming it; a published port cannot be taken by another
 * program while it is published, and is free again once unpublished; a
 * connection to the held port itself (untranslated) is refused by the
 * kernel rather than answered by anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { World } from '../helpers/conformance.js';

describe('published host ports on the host', () => {
  let w: World;

  beforeAll(async () => {
    w = await World.build('bpf', {
      networks: [{ name: 'pn', args: ['--subnet', '10.87.0.0/24'] }],
      sandboxes: [{ name: 'p1', network: 'pn' }],
      listen: { tcp: [80], udp: [] },
    });
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('refuses a port another program uses, naming it, and publishes nothing of the request', async () => {
    await w.agent('host').listen('tcp', 9400);
    await w.agent('host').listen('udp', 9402);
    const r = await w.h.berthTry('run', '-d', '--name', 'busy', '--network', 'pn', '-p', '9399-9401:80-82', '--', 'sleep', 'infinity');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host port 9400\/tcp is in use on this host by another program/);
    const u = await w.h.berthTry('run', '-d', '--name', 'busy', '--network', 'pn', '-p', '9402:53/udp', '--', 'sleep', 'infinity');
    expect(u.stderr).toMatch(/host port 9402\/udp is in use on this host by another program/);
    expect((await w.h.berthTry('inspect', 'busy')).code).not.toBe(0);
  });

  it('holds a published port against other programs until it is unpublished', async () => {
    await w.h.berth('run', '-d', '--name', 'holder', '--network', 'pn', '-p', '9410:80', '-p', '127.0.0.1:9411:80/udp', '--', 'sleep', 'infinity');
    const host = w.agent('host');
    await expect(host.listen('tcp', 9410)).rejects.toThrow(/EADDRINUSE/);
    await expect(host.listen('udp', 9411, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
    await w.h.berth('rm', '-f', 'holder');
    await host.listen('tcp', 9410);
    await host.listen('udp', 9411, '127.0.0.1');
  });
});
