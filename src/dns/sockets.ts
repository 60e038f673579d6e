/** The resolver's sockets: one UDP socket and one TCP server on the same address and port, and closing them. */
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { formatHostPort } from './names.js';
import type { Transport } from './message.js';

/** Binds UDP and TCP on one address and port; port 0 picks one free for both. */
export async function listen(address: string, family: 4 | 6, port: number): Promise<{ udp: dgram.Socket; tcp: net.Server; info: AddressInfo }> {
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeUdp(udp);
      throw listenError(err, address, port, 'udp');
    }
    const info = udp.address();
    const tcp = net.createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port: info.port, ipv6Only: family === 6, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeUdp(udp);
      // The kernel's free UDP port may be taken for TCP: pick another pair.
      if (port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 10) continue;
      throw listenError(err, address, info.port, 'tcp');
    }
    return { udp, tcp, info: { address, family: info.family, port: info.port } };
  }
}

function listenError(err: unknown, address: string, port: number, proto: Transport): Error {
  const e = err as NodeJS.ErrnoException;
  const out: NodeJS.ErrnoException = new Error(`cannot listen on ${formatHostPort(address, port)}/${proto}: ${e.message}`, { cause: err });
  if (e.code) out.code = e.code;
  return out;
}

export function closeUdp(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
