/**
 * The CLI's side of berthd's API: HTTP/1.1 over the unix socket, one request
 * a connection (Connection: close), spoken over node:net. node:http is not
 * used because loading it and making its first request costs about 10 ms
 * more than the whole exchange over net, and every short command pays it
 * (README, CLI start-up). CommonJS, as the CLI's start-up path is
 * (src/cli/berth.cts). The server side is node:http (server.ts).
 */
import { connect } from 'node:net';
import { BerthError, unavailable } from '../errors.cjs';

export { DEFAULT_SOCKET } from './defaults.cjs';

interface Response {
  status: number;
  body: Buffer;
  headers: Map<string, string>;
}

/** Decodes a chunked body (RFC 9112 section 7.1; extensions and trailers ignored). */
function dechunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) throw new Error('truncated chunked body');
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    if (eol + 2 + size > raw.length) throw new Error('truncated chunk');
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** The status and body of a whole HTTP/1.1 response. */
export function parseResponse(raw: Buffer): Response {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('no complete response header');
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string>();
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  let body = raw.subarray(end + 4);
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) body = dechunk(body);
  else if (headers.has('content-length')) {
    const n = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(n) || n < 0 || n > body.length) throw new Error(`content-length ${headers.get('content-length')} but ${body.length} bytes`);
    body = body.subarray(0, n);
  }
  return { status: Number(m[1]), body, headers };
}

export class ApiClient {
  constructor(readonly socket: string) {}

  /** One request; resolves with the parsed JSON (null for an empty body), rejects with a BerthError for a 4xx/5xx. */
  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.callTimed<T>(method, path, body).then((r) => r.value);
  }

  /** As call(), with berthd's Server-Timing header (its share of the request by phase, see src/timing.ts). */
  callTimed<T>(method: string, path: string, body?: unknown): Promise<{ value: T; serverTiming: string }> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const head = [`${method} ${path} HTTP/1.1`, 'Host: berthd', 'Connection: close', ...(data ? ['Content-Type: application/json', `Content-Length: ${data.length}`] : ['Content-Length: 0'])];
      const chunks: Buffer[] = [];
      const sock = connect(this.socket);
      // Written once connected; berthd closes the connection after its answer.
      sock.write(Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n'), data ?? Buffer.alloc(0)]));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(unavailable(`cannot reach berthd at ${this.socket} (${e.code}): is it running? (--socket or BERTH_SOCKET choose another)`));
        } else reject(e);
      });
      sock.on('end', () => {
        try {
          const res = parseResponse(Buffer.concat(chunks));
          const text = res.body.toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            if (res.status < 400) throw new Error(`${method} ${path}: the answer is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
          }
          if (res.status >= 400) {
            const msg = (parsed as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${res.status}`;
            reject(BerthError.fromStatus(res.status, msg));
          } else resolve({ value: parsed as T, serverTiming: res.headers.get('server-timing') ?? '' });
        } catch (e) {
          reject(new Error(`berthd at ${this.socket}: ${(e as Error).message}`));
        }
      });
    });
  }
}
