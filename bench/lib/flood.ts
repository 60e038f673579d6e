/**
 * A flood of UDP packets a datapath drops (drop-flood, issue 9): a small Node
 * sender run inside a namespace with nsenter --net, 64-byte datagrams to one
 * address and port, at a fixed rate (paced every millisecond) or as fast as
 * one process sends them, for a fixed time; it prints how many it sent.
 * Tracked by its pid and killed on stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SENDER = `
const dgram = require('node:dgram');
const [ip, port, secs, rate] = process.argv.slice(2);
const pps = Number(rate);
const s = dgram.createSocket('udp4');
const buf = Buffer.alloc(64, 0x42);
let sent = 0, errors = 0, asked = 0;
const t0 = Date.now();
const end = t0 + Number(secs) * 1000;
const done = () => { process.stdout.write(JSON.stringify({ sent, errors }) + '\\n'); process.exit(0); };
process.on('SIGTERM', done);
s.on('error', () => errors++);
const one = (next) => { asked++; s.send(buf, (e) => { if (e) errors++; else sent++; next && next(); }); };
s.connect(Number(port), ip, () => {
  if (!pps) {
    // As fast as one process sends: bursts of 512, the next when the last is out.
    const burst = () => {
      if (Date.now() > end) return done();
      let pending = 512;
      for (let i = 0; i < 512; i++) one(() => { if (--pending === 0) setImmediate(burst); });
    };
    return burst();
  }
  // Paced: every millisecond, what the rate asks for by now (the sender idles in between).
  const tick = () => {
    const now = Date.now();
    if (now > end) return done();
    const due = Math.min(Math.floor(((now - t0) * pps) / 1000) - asked, 4096);
    for (let i = 0; i < due; i++) one();
    setTimeout(tick, 1);
  };
  tick();
});
`;

export class Flooder {
  private dir = '';
  private readonly procs = new Set<ChildProcess>();

  private async script(): Promise<string> {
    if (!this.dir) {
      this.dir = await mkdtemp(join(tmpdir(), 'bb-bench-flood-'));
      await writeFile(join(this.dir, 'flood.cjs'), SENDER);
    }
    return join(this.dir, 'flood.cjs');
  }

  /** Starts a flood from @nsPath to @ip:@port for @seconds at @pps packets/s (0: as fast as it can); the promise it returns resolves with what it sent when it ends. */
  async start(nsPath: string, ip: string, port: number, seconds: number, pps = 0): Promise<{ done: Promise<{ sent: number; errors: number; seconds: number }> }> {
    const script = await this.script();
    const t0 = performance.now();
    const proc = spawn('nsenter', [`--net=${nsPath}`, '--', process.execPath, script, ip, String(port), String(seconds), String(pps)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.add(proc);
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const done = new Promise<{ sent: number; errors: number; seconds: number }>((resolve, reject) => {
      proc.on('exit', (code) => {
        this.procs.delete(proc);
        try {
          const j = JSON.parse(out.trim().split('\n').pop() ?? '') as { sent: number; errors: number };
          resolve({ ...j, seconds: (performance.now() - t0) / 1000 });
        } catch {
          reject(new Error(`the flood sender exited (${code}) without a count: ${err.trim()}`));
        }
      });
    });
    done.catch(() => undefined);
    return { done };
  }

  async stop(): Promise<void> {
    for (const p of [...this.procs]) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = '';
  }
}
