/** The API client's HTTP over node:net against a node:http server on a unix socket (as berthd's). No kernel objects. */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, parseResponse } from './client.cjs';
import { BerthError } from '../errors.js';
import { listenUnix, readJsonBody } from './http.js';

let dir: string;
let server: Server;
let client: ApiClient;
const big = 'x'.repeat(3 << 20);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-client-'));
  server = createServer((req, res) => {
    void (async () => {
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(v === undefined ? '' : JSON.stringify(v));
      };
      if (req.url === '/echo') return json(200, { method: req.method, body: (await readJsonBody(req)) ?? null, type: req.headers['content-type'] ?? null });
      if (req.url === '/missing') return json(404, { error: { message: "no sandbox 'web'" } });
      if (req.url === '/conflict') return json(409, { error: { message: 'name in use' } });
      if (req.url === '/empty') return json(204, undefined);
      if (req.url === '/big') return json(200, { big });
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"parts":');
        await new Promise((r) => setTimeout(r, 20));
        res.write('[1,2,');
        res.end('3]}');
        return;
      }
      if (req.url === '/text') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('berth_up 1\n');
      }
      return json(500, { error: { message: 'boom' } });
    })();
  });
  await listenUnix(server, join(dir, 'api.sock'), 0o600);
  client = new ApiClient(join(dir, 'api.sock'));
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('ApiClient', () => {
  it('GETs and POSTs JSON', async () => {
    expect(await client.call('GET', '/echo')).toEqual({ method: 'GET', body: null, type: null });
    expect(await client.call('POST', '/echo', { name: 'wéb', n: [1, 2] })).toEqual({ method: 'POST', body: { name: 'wéb', n: [1, 2] }, type: 'application/json' });
  });

  it('reads chunked, empty and large bodies', async () => {
    expect(await client.call('GET', '/chunked')).toEqual({ parts: [1, 2, 3] });
    expect(await client.call('GET', '/empty')).toBeNull();
    expect(((await client.call('GET', '/big')) as { big: string }).big).toHaveLength(big.length);
  });

  it('turns error statuses into BerthErrors of their kind, with the server message', async () => {
    const e = await client.call('GET', '/missing').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BerthError);
    expect(e).toMatchObject({ kind: 'not-found', message: "no sandbox 'web'" });
    expect(await client.call('GET', '/conflict').catch((x: unknown) => x)).toMatchObject({ kind: 'conflict', message: 'name in use' });
    expect(await client.call('GET', '/other').catch((x: unknown) => x)).toMatchObject({ kind: 'internal', message: 'boom' });
  });

  it('refuses an answer that is not JSON, naming it, and a socket nobody serves, naming the socket', async () => {
    await expect(client.call('GET', '/text')).rejects.toThrow(/GET \/text: the answer is not JSON: "berth_up 1\\n"/);
    const none = new ApiClient(join(dir, 'none.sock'));
    const e = await none.call('GET', '/v1/info').catch((x: unknown) => x);
    expect(e).toMatchObject({ kind: 'unavailable' });
    expect((e as Error).message).toContain(`cannot reach berthd at ${join(dir, 'none.sock')} (ENOENT)`);
  });

  it('parseResponse refuses what is not a whole response', () => {
    expect(() => parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'))).toThrow(/no complete response header/);
    expect(() => parseResponse(Buffer.from('SSH-2.0-x\r\n\r\n'))).toThrow(/not an HTTP response: "SSH-2.0-x"/);
    expect(() => parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc'))).toThrow(/content-length 9 but 3 bytes/);
    expect(() => parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'))).toThrow(/truncated chunk/);
    expect(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')).body.toString()).toBe('abcde');
  });
});
