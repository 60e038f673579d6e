/**
 * The load tools, run inside namespaces with nsenter --net (no /sys remount,
 * the root mount namespace): iperf3 (throughput), sockperf (TCP ping-pong
 * latency), wrk against nginx with "Connection: close" (new TCP connections
 * per second). Every server process is tracked and killed by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/exec.js';

export const PORTS = { iperf: 5201, sockperf: 11111, http: 8080 } as const;

export function nsRun(nsPath: string, cmd: string, args: string[], timeoutMs: number) {
  return run('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], { timeoutMs });
}

/** Servers started by the harness; stopAll() kills exactly these pids. */
export class Servers {
  private readonly procs: { name: string; proc: ChildProcess; signal: NodeJS.Signals }[] = [];
  private readonly dirs: string[] = [];

  private spawnIn(name: string, nsPath: string, cmd: string, args: string[], signal: NodeJS.Signals = 'SIGKILL'): ChildProcess {
    const proc = spawn('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    proc.on('exit', (code, sig) => {
      if (!this.stopping && code !== 0 && sig === null) process.stderr.write(`bench: server ${name} exited (${code}): ${err.trim()}\n`);
    });
    this.procs.push({ name, proc, signal });
    return proc;
  }

  private stopping = false;

  /** iperf3, sockperf and nginx listening on all addresses in @nsPath. */
  async startAll(label: string, nsPath: string): Promise<void> {
    this.spawnIn(`${label}/iperf3`, nsPath, 'iperf3', ['-s', '-p', String(PORTS.iperf)]);
    // sockperf server and client share CPU 0: a cross-CPU wake-up on this VM costs 20-30 µs at random and would drown the datapath's share.
    this.spawnIn(`${label}/sockperf`, nsPath, 'taskset', ['-c', '0', 'sockperf', 'server', '--tcp', '-i', '0.0.0.0', '-p', String(PORTS.sockperf)]);
    await this.startNginx(label, nsPath);
  }

  /** nginx alone (one process, `return 200`) on PORTS.http in @nsPath. */
  async startNginx(label: string, nsPath: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'bb-bench-nginx-'));
    this.dirs.push(dir);
    const conf = [
      'worker_processes 1;',
      'daemon off;',
      'master_process off;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      `  server { listen ${PORTS.http} backlog=4096; location / { return 200 "ok\\n"; } }`,
      '}',
    ].join('\n');
    await writeFile(join(dir, 'nginx.conf'), conf);
    // master_process off: one process, so killing our pid leaves no orphan worker.
    this.spawnIn(`${label}/nginx`, nsPath, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], 'SIGTERM');
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.procs.splice(0).map(async ({ proc, signal }) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), 2000);
        await done;
        clearTimeout(t);
      }),
    );
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true });
    this.stopping = false;
  }
}

/** Waits until TCP @port answers at @ip from @nsPath (bounded). */
export async function waitPort(nsPath: string, ip: string, port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await nsRun(nsPath, 'bash', ['-c', `exec 3<>/dev/tcp/${ip}/${port}`], 2000);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`nothing answers at ${ip}:${port} after ${timeoutMs} ms: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** TCP throughput in Gbit/s (iperf3, receiver side), and the bytes received. */
export async function iperf(nsPath: string, ip: string, port: number, seconds: number): Promise<{ gbps: number; bytes: number }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const { stdout } = await nsRun(nsPath, 'iperf3', ['-c', ip, '-p', String(port), '-t', String(seconds), '-J'], (seconds + 15) * 1000);
      const j = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
      return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes };
    } catch (e) {
      // the iperf3 server is busy for a moment after the previous test ends
      if (attempt >= 2) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** TCP request/response latency in µs: sockperf ping-pong with --mps=max; sockperf reports half the round trip (its convention), p50 and p99 of that. */
export async function sockperf(nsPath: string, ip: string, port: number, seconds: number): Promise<{ p50: number; p99: number; avg: number; roundTrips: number }> {
  const { stdout, stderr } = await nsRun(nsPath, 'taskset', ['-c', '0', 'sockperf', 'ping-pong', '--tcp', '-i', ip, '-p', String(port), '-t', String(seconds), '--mps=max'], (seconds + 15) * 1000);
  const text = stdout + stderr;
  const num = (re: RegExp) => {
    const m = re.exec(text);
    if (!m) throw new Error(`cannot read sockperf output: ${text.slice(-500)}`);
    return Number(m[1]);
  };
  // every round trip of the whole run (warm-up included), since CPU time is read around the whole run
  const total = /\[Total Run\][^\n]*ReceivedMessages=(\d+)/.exec(text);
  return { p50: num(/percentile 50\.000 =\s+([\d.]+)/), p99: num(/percentile 99\.000 =\s+([\d.]+)/), avg: num(/avg-latency=([\d.]+)/), roundTrips: total ? Number(total[1]) : NaN };
}

/** New TCP connections per second: wrk, one HTTP request per connection ("Connection: close"). */
export async function connRate(nsPath: string, ip: string, port: number, seconds: number): Promise<{ rate: number; errors: number; requests: number }> {
  const { stdout } = await nsRun(nsPath, 'wrk', ['-t', '1', '-c', '16', '-d', `${seconds}s`, '-H', 'Connection: close', `http://${ip}:${port}/`], (seconds + 15) * 1000);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`cannot read wrk output: ${stdout}`);
  const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const errors = (e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  const n = /(\d+) requests in/.exec(stdout);
  return { rate: Number(m[1]), errors, requests: n ? Number(n[1]) : NaN };
}
