/**
 * What the routed tests share: polling, the datapath's counters through the
 * CLI, routes of a lab host, a capture on the underlay, and raw datagrams
 * with any source sent from a host's own namespace.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { OverlayLab, LabHost } from '../../harness/overlay-lab.js';
import type { NetworkView } from '../../src/api/views.js';
import { run } from '../../src/exec.js';

export const json = async <T>(p: Promise<{ stdout: string }>): Promise<T> => JSON.parse((await p).stdout) as T;

export async function eventually(fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const networkNames = async (h: LabHost) => (await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'))).map((n) => n.Name);

/** Host @h's IPv4 routes with a gateway inside @subnet's first two octets, as "dst via gw". */
export async function routesVia(lab: OverlayLab, h: LabHost, prefix: string): Promise<string[]> {
  const r = JSON.parse((await run('ip', ['-n', lab.topo.ns(h.short), '-j', '-4', 'route', 'show'])).stdout) as { dst: string; gateway?: string }[];
  return r.filter((x) => x.gateway && x.dst.startsWith(prefix)).map((x) => `${x.dst} via ${x.gateway}`);
}

/** Captures on @iface of namespace @ns while @traffic runs (test/routed/capture.py). */
export async function capture(ns: string, iface: string, secs: number, traffic: () => Promise<unknown>): Promise<{ frames: number; vxlan: number; flows: Record<string, number> }> {
  const p = spawn('ip', ['netns', 'exec', ns, 'python3', join(import.meta.dirname, 'capture.py'), iface, String(secs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    p.once('exit', () => reject(new Error(`capture exited: ${err}`)));
  });
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  await ready;
  await traffic();
  await done;
  return JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { frames: number; vxlan: number; flows: Record<string, number> };
}

/** Drop counters of @h's datapath by reason (`berth datapath`). */
export async function drops(h: LabHost, reason: string): Promise<number> {
  const d = JSON.parse((await h.berth('datapath', '--format', 'json')).stdout) as { detail?: { drops?: Record<string, { packets: number }> } };
  return d.detail?.drops?.[reason]?.packets ?? 0;
}

/** The eBPF datapath's event counters of @h (`berth datapath`): redirects by kind. */
export async function stats(h: LabHost): Promise<Record<string, number>> {
  const d = JSON.parse((await h.berth('datapath', '--format', 'json')).stdout) as { detail?: { stats?: Record<string, number> } };
  return d.detail?.stats ?? {};
}

/** Sends one UDP datagram with source @src (any address: a raw socket) from host @h's own namespace. */
export async function sendUdpFrom(lab: OverlayLab, h: LabHost, src: string, dst: string, port: number, text: string): Promise<void> {
  const py = [
    'import socket,struct,sys',
    's,d,p,t=sys.argv[1],sys.argv[2],int(sys.argv[3]),sys.argv[4].encode()',
    'u=struct.pack("!HHHH",40000,p,8+len(t),0)+t',
    'ip=struct.pack("!BBHHHBBH4s4s",0x45,0,20+len(u),0,0x4000,64,17,0,socket.inet_aton(s),socket.inet_aton(d))',
    'k=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)',
    'k.sendto(ip+u,(d,0))',
  ].join('\n');
  await run('ip', ['netns', 'exec', lab.topo.ns(h.short), 'python3', '-c', py, src, dst, String(port), text]);
}

