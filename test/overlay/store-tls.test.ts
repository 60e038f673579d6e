/**
 * etcds://: the cluster store over TLS with client certificates, against a
 * real etcd on loopback whose certificates the test makes with openssl. A
 * client without a certificate is refused, naming the store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { EtcdStore, parseEtcdUrl } from '../../src/store/etcd.js';
import { run, tryRun } from '../../src/exec.js';

const log = pino({ level: 'silent' });
const port = 20000 + ((process.pid + 7919) % 20000);
let etcd: ChildProcess;
let dir: string;
const stores: EtcdStore[] = [];

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { timeoutMs: 30_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-etcd-tls-'));
  const f = (n: string) => join(dir, n);
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=berth-test-ca', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await writeFile(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`));
    await openssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f(`${who}.ext`), '-out', f(`${who}.crt`));
  }
  etcd = spawn('etcd', ['--name', 'tls', '--data-dir', f('data'), '--listen-client-urls', `https://127.0.0.1:${port}`, '--advertise-client-urls', `https://127.0.0.1:${port}`,
    '--cert-file', f('server.crt'), '--key-file', f('server.key'), '--client-cert-auth', '--trusted-ca-file', f('ca.crt'),
    '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-cluster', `tls=http://127.0.0.1:${port + 1}`], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  const health = ['--endpoints', `https://127.0.0.1:${port}`, '--cacert', f('ca.crt'), '--cert', f('client.crt'), '--key', f('client.key'), '--dial-timeout', '1s', 'endpoint', 'health'];
  while ((await tryRun('etcdctl', health)).code !== 0) {
    if (Date.now() > deadline) throw new Error('etcd (TLS) did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
}, 60_000);

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => undefined);
  if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
    const done = new Promise((r) => etcd.once('exit', r));
    etcd.kill('SIGKILL');
    await done;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('etcds:// with a CA and a client certificate reads, writes and watches', async () => {
  const f = (n: string) => readFile(join(dir, n));
  const tls = { ca: await f('ca.crt'), cert: await f('client.crt'), key: await f('client.key') };
  const a = new EtcdStore(parseEtcdUrl(`etcds://127.0.0.1:${port}`), '/tls/', log, tls);
  const b = new EtcdStore(parseEtcdUrl(`etcds://127.0.0.1:${port}`), '/tls/', log, tls);
  stores.push(a, b);
  await a.start();
  await b.start();
  const seen = new Promise<void>((resolve) => b.on('changed', () => b.get('k') !== undefined && resolve()));
  expect(await a.create('k', { v: 1 })).toBe(true);
  expect(await a.create('k', { v: 2 })).toBe(false);
  await seen;
  expect(b.get('k')).toEqual({ v: 1 });
});

it('without a client certificate the store refuses, and the error names it', async () => {
  const s = new EtcdStore(parseEtcdUrl(`etcds://127.0.0.1:${port}`), '/tls/', log, { ca: await readFile(join(dir, 'ca.crt')) });
  stores.push(s);
  await expect(s.start()).rejects.toThrow(`cluster store etcds://127.0.0.1:${port}`);
});
