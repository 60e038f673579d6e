/** The CLI's side of berthd's API: HTTP over the unix socket. CommonJS, as the CLI's start-up path is (src/cli/berth.cts). */
import { request } from 'node:http';
import { BerthError, unavailable } from '../errors.cjs';

export { DEFAULT_SOCKET } from './defaults.cjs';

export class ApiClient {
  constructor(readonly socket: string) {}

  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        { socketPath: this.socket, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const parsed = text ? (JSON.parse(text) as unknown) : null;
            const status = res.statusCode ?? 500;
            if (status >= 400) {
              const msg = (parsed as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${status}`;
              reject(BerthError.fromStatus(status, msg));
            } else {
              resolve(parsed as T);
            }
          });
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(unavailable(`cannot reach berthd at ${this.socket} (${e.code}): is it running? (--socket or BERTH_SOCKET choose another)`));
        } else reject(e);
      });
      req.end(data);
    });
  }
}
