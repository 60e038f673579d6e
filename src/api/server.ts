/**
 * berthd's HTTP API on a unix socket (mode 0660, no TCP listener). JSON in
 * and out; every BerthError becomes its status code with {error: {kind, message}}.
 */
import type { ExplainRequest } from '../controller/explain.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenUnix, readJsonBody } from './http.js';
import type { Logger } from 'pino';
import { BerthError, badRequest, notFound } from '../errors.js';
import type { Controller } from '../controller/controller.js';
import { networkView, pseudoNetworkView, sandboxView } from './views.js';
import { exposure } from '../controller/exposure.js';
import { Timing, phase, withTiming } from '../timing.js';
import { attach, checkAttachment, detach, gcAttachments } from '../controller/attachments.js';

type Handler = (ctx: { params: string[]; body: unknown; query: URLSearchParams }) => Promise<unknown> | unknown;
interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
  status?: number;
}

export interface ApiInfo {
  info(): unknown;
  /** Prometheus exposition text (GET /metrics) */
  metrics?(): Promise<{ contentType: string; text: string }>;
}

/** A response that is not JSON. */
class RawBody {
  constructor(
    readonly contentType: string,
    readonly text: string,
  ) {}
}

export function routes(c: Controller, info: ApiInfo): Route[] {
  const R = (method: string, path: string, handler: Handler, status?: number): Route => ({
    method,
    pattern: new RegExp(`^${path.replace(/:[a-z]+/g, '([^/]+)')}$`),
    handler,
    ...(status ? { status } : {}),
  });
  const p = (params: string[], i: number) => decodeURIComponent(params[i] ?? '');
  return [
    R('GET', '/v1/info', () => info.info()),
    R('GET', '/metrics', async () => {
      if (!info.metrics) throw notFound('this berthd keeps no metrics');
      const m = await info.metrics();
      return new RawBody(m.contentType, m.text);
    }),
    R('GET', '/v1/exposure', () => exposure(c.desired())),
    R('GET', '/v1/nodes', () => c.nodes()),
    R('GET', '/v1/datapath', () => c.datapathStatus()),
    R('POST', '/v1/explain', ({ body }) => c.explain(body as ExplainRequest)),
    R('GET', '/v1/datapath/events', ({ query }) => {
      const since = Number(query.get('since') ?? 0);
      if (!Number.isInteger(since) || since < 0) throw badRequest(`since=${query.get('since')} is not an event number`);
      return c.datapathEvents(since, { ...(query.get('sandbox') ? { sandbox: query.get('sandbox')! } : {}), ...(query.get('network') ? { network: query.get('network')! } : {}) });
    }),
    R('GET', '/v1/networks', () => [
      ...Object.values(c.snapshot().networks).map((n) => networkView(c, n)),
      pseudoNetworkView('host'),
      pseudoNetworkView('none'),
    ]),
    R('POST', '/v1/networks', async ({ body }) => networkView(c, await c.createNetwork(body as never)), 201),
    R('POST', '/v1/networks/prune', async () => ({ removed: await c.pruneNetworks() })),
    R('GET', '/v1/networks/:ref', ({ params }) => {
      const ref = p(params, 0);
      return ref === 'host' || ref === 'none' ? pseudoNetworkView(ref) : networkView(c, c.network(ref));
    }),
    R('DELETE', '/v1/networks/:ref', async ({ params }) => {
      await c.removeNetwork(p(params, 0));
      return null;
    }),
    R('POST', '/v1/networks/:ref/connect', async ({ params, body }) => c.connect(p(params, 0), body as never)),
    R('POST', '/v1/networks/:ref/disconnect', async ({ params, body }) => {
      const b = (body ?? {}) as { sandbox?: unknown };
      if (typeof b.sandbox !== 'string') throw badRequest('disconnect needs {"sandbox": NAME}');
      await c.disconnect(p(params, 0), b.sandbox);
      return null;
    }),
    // CNI attachments (berth-cni): a runtime's namespace as an endpoint, keyed by (CNI network, container id, ifname).
    R('POST', '/v1/cni/attachments', ({ body }) => c.exclusive((core) => attach(core, body as never)), 201),
    R('DELETE', '/v1/cni/attachments', async ({ body }) => ({ removed: await c.exclusive((core) => detach(core, (body ?? {}) as never)) })),
    R('POST', '/v1/cni/check', ({ body }) => c.exclusive((core) => checkAttachment(core, body as never))),
    R('POST', '/v1/cni/gc', ({ body }) => {
      const b = (body ?? {}) as { network?: unknown; valid?: unknown };
      return c.exclusive(async (core) => ({ removed: await gcAttachments(core, b.network, b.valid) }));
    }),
    R('GET', '/v1/sandboxes', () => Object.values(c.snapshot().sandboxes).map((s) => sandboxView(c, s))),
    R('POST', '/v1/sandboxes', async ({ body }) => {
      const sb = await c.run(body as never);
      const t = performance.now();
      const v = sandboxView(c, sb);
      phase('view', performance.now() - t);
      return v;
    }, 201),
    R('GET', '/v1/sandboxes/:ref', ({ params }) => sandboxView(c, c.sandbox(p(params, 0)))),
    R('POST', '/v1/sandboxes/:ref/update', async ({ params, body }) => sandboxView(c, await c.update(p(params, 0), (body ?? {}) as never))),
    R('DELETE', '/v1/sandboxes/:ref', async ({ params, query }) => {
      await c.removeSandbox(p(params, 0), ['1', 'true'].includes(query.get('force') ?? ''));
      return null;
    }),
    R('GET', '/v1/sandboxes/:ref/logs', async ({ params, query }) => {
      const sb = c.sandbox(p(params, 0));
      const from = Number(query.get('offset') ?? 0);
      return { ...(await c.output(sb, Number.isFinite(from) && from >= 0 ? from : 0)), status: c.status(sb), exitCode: sb.exitCode ?? null };
    }),
    R('POST', '/v1/sandboxes/:ref/exec', ({ params, body }) => {
      const cmd = (body as { cmd?: unknown })?.cmd;
      if (!Array.isArray(cmd) || !cmd.length || cmd.some((x) => typeof x !== 'string')) throw badRequest('exec needs {"cmd": [CMD, ARGS...]}');
      const sb = c.sandbox(p(params, 0));
      if (c.status(sb) !== 'running') throw new BerthError('conflict', `sandbox '${sb.name}' is not running`);
      return c.processSpec(sb, cmd as string[]);
    }),
  ];
}

export async function startApi(socket: string, c: Controller, info: ApiInfo, log: Logger): Promise<Server> {
  const table = routes(c, info);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // berthd's own share of each request, by phase (src/timing.ts): what a client cannot tell from its own clock
    const timing = new Timing();
    void withTiming(timing, () => serve(req, res, timing));
  });
  const serve = async (req: IncomingMessage, res: ServerResponse, timing: Timing) => {
    const url = new URL(req.url ?? '/', 'http://berthd');
    const send = (status: number, value: unknown) => {
      res.setHeader('server-timing', timing.header());
      if (value instanceof RawBody) {
        res.writeHead(status, { 'content-type': value.contentType });
        res.end(value.text);
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(value === null || value === undefined ? '' : JSON.stringify(value));
    };
    try {
      const route = table.find((r) => r.method === req.method && r.pattern.test(url.pathname));
      if (!route) throw notFound(`no API route ${req.method} ${url.pathname}`);
      const params = route.pattern.exec(url.pathname)!.slice(1);
      const out = await route.handler({ params, body: await readJsonBody(req), query: url.searchParams });
      send(out === null ? 204 : (route.status ?? 200), out);
    } catch (e) {
      const err = e instanceof BerthError ? e : new BerthError('internal', (e as Error).message);
      if (err.kind === 'internal') log.error({ err: e, method: req.method, path: url.pathname }, 'request failed');
      send(err.status, { error: { kind: err.kind, message: err.message } });
    }
  };
  await listenUnix(server, socket, 0o660);
  return server;
}
