/**
 * The metrics endpoint over TCP (`berthd --metrics-addr HOST:PORT`), only
 * when given explicitly: the unix socket API serves GET /metrics anyway. This
 * listener serves nothing else.
 */
import { createServer, type Server } from 'node:http';
import { badRequest } from '../errors.js';
import { parseIp } from '../ipam/addr.js';
import type { Metrics } from './metrics.js';

/** HOST:PORT, [IPV6]:PORT; the host must be an address (no name lookups in the daemon's start). */
export function parseMetricsAddr(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) throw badRequest(`invalid --metrics-addr '${text}': expected HOST:PORT such as 127.0.0.1:9464 or [::1]:9464`);
  const host = m[1] ?? m[2]!;
  const ip = (() => {
    try {
      return parseIp(host);
    } catch {
      throw badRequest(`invalid --metrics-addr '${text}': '${host}' is not an IP address`);
    }
  })();
  if (m[2] && ip.family === 6) throw badRequest(`invalid --metrics-addr '${text}': write an IPv6 address in brackets, [${host}]:PORT`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw badRequest(`invalid --metrics-addr '${text}': port ${m[3]} is not from 1 to 65535`);
  return { host: ip.text, port };
}

export async function startMetricsServer(addr: { host: string; port: number }, metrics: Metrics): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://berthd').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('only GET /metrics is served here\n');
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text);
      },
      (e: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${(e as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL' ? badRequest(`--metrics-addr ${addr.host}:${addr.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : 'not an address of this host'}`) : e));
    server.listen(addr.port, addr.host, () => resolve());
  });
  return server;
}
