/**
 * A flood of UDP packets a datapath drops (drop-flood, issue 9): a small Node
 * sender run inside a namespace with nsenter --net, 64-byte datagrams to one
 * address and port as fast as one process sends them, for a fixed time; it
 * prints how many it sent. Tracked by its pid and killed on stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SENDER = `
const dgram = require('node:dgram');
const [ip, port, secs] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
const buf = Buffer.alloc(64, 0x42);
let sent = 0, errors = 0;
const end = Date.now() + Number(secs) * 1000;
const done = () => { process.stdout.write(JSON.stringify({ sent, errors }) + '\\n'); process.exit(0); };
process.on('SIGTERM', done);
s.on('error', () => errors++);
s.connect(Number(port), ip, () => {
  const burst = () => {
    if (Date.now() > end) return done();
    let pending = 512;
    for (let i = 0; i < 512; i++) s.send(buf, (e) => { if (e) errors++; else sent++; if (--pending === 0) setImmediate(burst); });
  };
  burst();
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

  /** Starts a flood from @nsPath to @ip:@port for @seconds; the promise it returns resolves with what it sent when it ends. */
  async start(nsPath: string, ip: string, port: number, seconds: number): Promise<{ done: Promise<{ sent: number; errors: number; seconds: number }> }> {
    const script = await this.script();
    const t0 = performance.now();
    const proc = spawn('nsenter', [`--net=${nsPath}`, '--', process.execPath, script, ip, String(port), String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
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
