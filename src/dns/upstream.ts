/**
 * One forwarded query's exchange with one upstream server, over UDP or TCP,
 * bounded by a timeout and cancellable (the resolver closing ends it).
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type * as dnsPacket from 'dns-packet';
import type { Upstream } from './names.js';
import { checkReply, frame, takeFrames, type Query, type Transport } from './message.js';
import { closeUdp } from './sockets.js';

/**
 * One query to one upstream. The upstream sees a fresh random ID (and over
 * UDP a fresh source port), so replies cannot be matched by guessing the
 * client's ID; resolves with the upstream's reply, still under that ID.
 */
export function exchange(up: Upstream, q: Query, transport: Transport, waits: Set<() => void>, timeoutMs: number): Promise<Buffer> {
  const id = randomInt(0x10000);
  const query = Buffer.from(q.raw);
  query.writeUInt16BE(id, 0);
  const question = q.question as dnsPacket.Question;
  return new Promise<Buffer>((resolve, reject) => {
    let stop: () => void = () => undefined;
    const settle = (err: Error | null, reply?: Buffer) => {
      // Timer, socket events and close() race: the first to settle wins.
      if (!waits.delete(cancel)) return;
      clearTimeout(timer);
      stop();
      if (err) reject(err);
      else resolve(reply as Buffer);
    };
    const cancel = () => settle(new Error('resolver closed'));
    waits.add(cancel);
    const ms = timeoutMs;
    const timer = setTimeout(() => settle(new Error(`no answer over ${transport} within ${ms} ms`)), ms);

    if (transport === 'udp') {
      const sock = dgram.createSocket(up.family === 6 ? 'udp6' : 'udp4');
      stop = () => closeUdp(sock);
      sock.on('error', (err) => settle(err));
      sock.on('message', (msg) => {
        const check = checkReply(msg, id, question);
        // A stray datagram (late reply to an earlier query, spoof) does not end the wait.
        if (check !== 'foreign') settle(check === 'ok' ? null : check, msg);
      });
      // Connected: only datagrams from the upstream's address and port arrive. The callback
      // also runs when connecting fails (no route to the upstream): send() would then throw.
      sock.connect(up.port, up.host, ((err?: Error) => (err ? settle(err) : sock.send(query, (e) => e && settle(e)))) as () => void);
    } else {
      const sock = net.connect({ host: up.host, port: up.port });
      stop = () => sock.destroy();
      let buffered: Buffer = Buffer.alloc(0);
      sock.setNoDelay(true);
      sock.on('connect', () => sock.write(frame(query)));
      sock.on('error', (err) => settle(err));
      sock.on('close', () => settle(new Error('upstream closed the TCP connection without an answer')));
      sock.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        const [frames] = takeFrames(buffered);
        const msg = frames[0];
        if (!msg) return;
        const check = checkReply(msg, id, question);
        settle(check === 'ok' ? null : check === 'foreign' ? new Error('TCP reply does not match the query') : check, msg);
      });
    }
  });
}
