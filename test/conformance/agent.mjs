#!/usr/bin/env node
/**
 * A conformance agent (argv[2]: its name): one per network namespace, started
 * by the test with nsenter, driven by JSON lines on stdin (one reply line each on stdout).
 * It serves TCP and UDP echo that report the peer address as the server
 * saw it, probes other agents, and runs commands inside its namespace (ping,
 * ip, the SCTP helper). It exits when stdin closes, so a dying test leaves
 * no agent behind.
 *
 *   {"id":1,"op":"listen","proto":"tcp","port":80}
 *   {"id":2,"op":"probe","proto":"udp","host":"10.0.0.2","port":80,"src":"10.0.0.9","timeoutMs":800}
 *       -> {"id":2,"ok":true,"reply":{"by":"a","peer":"10.0.0.3","peerPort":41000,"local":"10.0.0.2","localPort":80}}
 *       -> {"id":2,"ok":false,"error":"timeout"}
 *   {"id":3,"op":"seen","token":"t1"}      -> {"id":3,"peer":"10.0.0.3"|null}   (UDP datagrams carry a token)
 *   {"id":4,"op":"accepted","port":80}     -> {"id":4,"count":3}                 (TCP connections accepted)
 *   {"id":5,"op":"exec","cmd":"ping","args":["-c1","x"],"timeoutMs":3000} -> {"id":5,"code":0,"stdout":"","stderr":""}
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const name = process.argv[2] ?? '';
const seen = new Map();
const accepted = new Map();
const norm = (a) => (a && a.startsWith('::ffff:') ? a.slice(7) : a);

/** proto/port -> the server or socket listening, for unlisten */
const listening = new Map();

function unlisten({ proto, port }) {
  const l = listening.get(`${proto}/${port}`);
  listening.delete(`${proto}/${port}`);
  return new Promise((resolve) => (l ? l.close(() => resolve({ ok: true })) : resolve({ ok: false, error: 'not listening' })));
}

function listen({ proto, port, host = '::' }) {
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const srv = net.createServer((s) => {
        accepted.set(port, (accepted.get(port) ?? 0) + 1);
        s.on('error', () => undefined);
        s.end(JSON.stringify({ by: name, peer: norm(s.remoteAddress), peerPort: s.remotePort, local: norm(s.localAddress), localPort: s.localPort }) + '\n');
      });
      srv.once('error', reject);
      srv.listen({ port, host, ipv6Only: false }, () => {
        listening.set(`tcp/${port}`, srv);
        resolve({});
      });
      return;
    }
    const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: false });
    sock.on('message', (msg, r) => {
      const text = msg.toString();
      if (text.startsWith('tok:')) seen.set(text.slice(4), norm(r.address));
      const reply = JSON.stringify({ by: name, peer: norm(r.address), peerPort: r.port, localPort: port });
      sock.send(reply, r.port, r.address);
    });
    sock.once('error', reject);
    sock.bind({ port, address: host }, () => {
      listening.set(`udp/${port}`, sock);
      resolve({});
    });
  });
}

function probeTcp({ host, port, src, timeoutMs }) {
  return new Promise((resolve) => {
    let buf = '';
    const s = net.connect({ host, port, ...(src ? { localAddress: src } : {}) });
    const done = (r) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    s.on('data', (d) => (buf += d.toString()));
    s.on('end', () => {
      try {
        done({ ok: true, reply: JSON.parse(buf) });
      } catch {
        done({ ok: false, error: `bad reply '${buf}'` });
      }
    });
    s.on('error', (e) => done({ ok: false, error: e.code ?? e.message }));
  });
}

function probeUdp({ host, port, src, timeoutMs, token }) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const done = (r) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    sock.on('message', (msg) => {
      try {
        done({ ok: true, reply: JSON.parse(msg.toString()) });
      } catch {
        done({ ok: false, error: 'bad reply' });
      }
    });
    sock.on('error', (e) => done({ ok: false, error: e.code ?? e.message }));
    const send = () => sock.send(`tok:${token ?? ''}`, port, host, (e) => e && done({ ok: false, error: e.code ?? e.message }));
    if (src) sock.bind({ address: src, port: 0 }, send);
    else send();
  });
}

function exec({ cmd, args = [], timeoutMs = 5000 }) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => resolve({ code: -1, stdout, stderr: e.message }));
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

async function handle(req) {
  switch (req.op) {
    case 'listen':
      return listen(req);
    case 'unlisten':
      return unlisten(req);
    case 'probe':
      return req.proto === 'tcp' ? probeTcp(req) : probeUdp(req);
    case 'seen':
      return { peer: seen.get(req.token) ?? null };
    case 'accepted':
      return { count: accepted.get(req.port) ?? 0 };
    case 'exec':
      return exec(req);
    default:
      throw new Error(`unknown op '${req.op}'`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  handle(req).then(
    (r) => process.stdout.write(JSON.stringify({ id: req.id, ...r }) + '\n'),
    (e) => process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: e.message }) + '\n'),
  );
});
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
