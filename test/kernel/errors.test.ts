/** Failures reach JavaScript as errors that say what was wrong, with what value. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject } from '../../src/bpf/index.js';
import { counter, ifCountKey } from '../../src/bpf/abi.js';
import { isNativeError } from '../../src/native/addon.js';
import { bpfObjectPath, projectPath } from '../../src/paths.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';
import { rejection } from '../helpers/rejection.js';

describe('a program the verifier rejects', () => {
  it('fails to load with the verifier reason in the message and the log attached', async () => {
    const e = await rejection(BpfObject.load(projectPath('build', 'bpf', 'test', 'verifier_reject.bpf.o')));
    expect(isNativeError(e)).toBe(true);
    expect(e.code).toBe('EACCES');
    expect(e.errno).toBe(13);
    expect(e.syscall).toBe('bpf_object__load');
    expect(e.message).toMatch(/load BPF object '.*verifier_reject\.bpf\.o'/);
    expect(e.message).toMatch(/verifier: invalid access to packet/);
    expect(e.verifierLog).toMatch(/R1 offset is outside of the packet/);
    // Trimmed: the tail of the log, not the whole of it.
    expect(e.verifierLog!.split('\n').length).toBeLessThanOrEqual(41);
  });
});

describe('bad input', () => {
  let obj: BpfObject;
  // Even refused attachments are aimed at a namespace of the test's own.
  let topo: Topology;
  let ns: string;
  beforeAll(async () => {
    obj = await BpfObject.load(bpfObjectPath('count'));
    topo = testTopology();
    await topo.addNetns('x');
    ns = topo.nsPath('x');
  });
  afterAll(async () => {
    obj?.close();
    await topo?.destroy();
  });

  it('a missing object file names the path', async () => {
    const e = await rejection(BpfObject.open('/nonexistent/x.bpf.o'));
    expect(e.code).toBe('ENOENT');
    expect(e.message).toContain("'/nonexistent/x.bpf.o'");
  });

  it('an unknown knob names itself and the knobs there are', async () => {
    await expect(BpfObject.open(bpfObjectPath('count'), { consts: { cfg_nope: 1 } })).rejects.toThrow(
      /has no knob 'cfg_nope' \(knobs: cfg_drop_l4proto, cfg_event_sample\)/,
    );
  });

  it('a knob value out of range names knob and value', async () => {
    await expect(BpfObject.open(bpfObjectPath('count'), { consts: { cfg_drop_l4proto: 300 } })).rejects.toThrow(
      /knob 'cfg_drop_l4proto' is 1 byte\(s\): 300 is out of range/,
    );
  });

  it('knobs cannot change after load', () => {
    expect(() => obj.setConst('cfg_drop_l4proto', 6)).toThrow(/already loaded: knobs are read-only/);
  });

  it('an unknown map or program is named', () => {
    expect(() => obj.rawMap('nope')).toThrow(/has no map 'nope'/);
    expect(() => obj.program('nope')).toThrow(/has no program 'nope'/);
  });

  it('a key of the wrong size is a TypeError naming sizes and map', async () => {
    const raw = obj.rawMap('berth_counts');
    await expect(async () => raw.lookup(Buffer.alloc(3))).rejects.toThrow(TypeError);
    await expect(async () => raw.lookup(Buffer.alloc(3))).rejects.toThrow(/key is 3 bytes; map 'berth_counts' needs 8/);
  });

  it('attaching to an interface that does not exist names it', async () => {
    const e = await rejection(obj.program('berth_count_tc_ingress').attachTc({ ifname: 'nosuchif0', direction: 'ingress', netns: ns }));
    expect(e.code).toBe('ENODEV');
    expect(e.message).toContain("'nosuchif0'");
  });

  it('a namespace that does not exist is named, and nothing is attached', async () => {
    const e = await rejection(obj.program('berth_count_tc_ingress').attachTc({ ifname: 'lo', direction: 'ingress', netns: '/var/run/netns/berth-no-such-ns' }));
    expect(e.code).toBe('ENOENT');
    expect(e.syscall).toBe('open');
    expect(e.message).toContain("'/var/run/netns/berth-no-such-ns'");
  });

  it('a bad direction or mode is a TypeError naming the value', async () => {
    const p = obj.program('berth_count_tc_ingress');
    await expect(async () => p.attachTc({ ifname: 'lo', netns: ns, direction: 'sideways' as 'ingress' })).rejects.toThrow(/direction must be 'ingress' or 'egress', got 'sideways'/);
    await expect(async () => p.attachXdp({ ifname: 'lo', netns: ns, mode: 'turbo' as 'native' })).rejects.toThrow(/xdp mode must be 'native' or 'generic', got 'turbo'/);
  });

  it('a per-CPU map taken as a plain one says so', () => {
    expect(() => obj.map('berth_counts', ifCountKey, counter)).toThrow(/is per-CPU: use PerCpuMap/);
  });
});
