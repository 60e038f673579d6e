/** What berth's HTTP servers on unix sockets share: reading a JSON body, listening on a socket. */
import type { IncomingMessage, Server } from 'node:http';
import { chmod, unlink } from 'node:fs/promises';
import { badRequest } from '../errors.js';

const MAX_BODY = 1 << 20;

/** The request's JSON body; undefined when there is none. Refuses oversized or invalid bodies. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw badRequest(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('request body is not valid JSON');
  }
}

/** Listens on @socket (replacing a stale one) and gives it @mode. */
export async function listenUnix(server: Server, socket: string, mode: number): Promise<void> {
  await unlink(socket).catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  await chmod(socket, mode);
}
