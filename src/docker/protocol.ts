/**
 * Docker's plugin protocol on a unix socket: POST /<Interface>.<Method> with a
 * JSON body, answered with Content-Type application/vnd.docker.plugins.v1.2+json;
 * a failure is {"Err": "..."} (HTTP 500 for errors of Docker's making, as the
 * plugin helpers do). berthd serves both a NetworkDriver and an IpamDriver here.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { listenUnix, readJsonBody } from '../api/http.js';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Controller } from '../controller/controller.js';
import { DockerEngine } from './engine.js';
import { BerthError } from '../errors.js';
import { networkDriverRoutes } from './network.js';
import { ipamDriverRoutes } from './ipam.js';

export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

import type { PluginHandler } from './wire.js';

export function pluginRoutes(c: Controller, log: Logger): Record<string, PluginHandler> {
  const engine = new DockerEngine(c);
  return {
    '/Plugin.Activate': () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }),
    ...networkDriverRoutes(engine, log),
    ...ipamDriverRoutes(engine, log),
  };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const v = await readJsonBody(req);
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new BerthError('bad-request', 'request body is not a JSON object');
  return v as Record<string, unknown>;
}

export async function startDockerPlugin(socket: string, c: Controller, log: Logger): Promise<Server> {
  const table = pluginRoutes(c, log);
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://plugin').pathname;
    const send = (status: number, v: object) => {
      res.writeHead(status, { 'content-type': PLUGIN_CONTENT_TYPE });
      res.end(JSON.stringify(v));
    };
    let body: Record<string, unknown> = {};
    try {
      const handler = table[path];
      if (!handler) {
        send(404, { Err: `berth: no such plugin call ${path}` });
        return;
      }
      body = await readJson(req);
      const out = await handler(body);
      log[process.env.BERTH_DOCKER_TRACE ? 'info' : 'debug']({ call: path, request: body, response: out }, 'docker plugin call');
      send(200, out);
    } catch (e) {
      const msg = (e as Error).message;
      log.warn({ call: path, request: body, err: msg }, 'docker plugin call refused');
      send(e instanceof BerthError && e.kind !== 'internal' ? 400 : 500, { Err: `berth: ${msg}` });
    }
  });
  await mkdir(dirname(socket), { recursive: true, mode: 0o755 });
  await listenUnix(server, socket, 0o660);
  return server;
}
