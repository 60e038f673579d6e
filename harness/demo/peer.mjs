// A TCP peer for `berth demo`, run inside a namespace with nsenter:
//   node peer.mjs serve PORT            answer every connection with {"peer": "<client address>"}
//   node peer.mjs connect HOST PORT MS  print {"ok": true, "peer": ...} or {"ok": false, "error": ...}
import net from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
const norm = (x) => (x && x.startsWith('::ffff:') ? x.slice(7) : x);
if (mode === 'serve') {
  net.createServer((s) => s.end(JSON.stringify({ peer: norm(s.remoteAddress) }) + '\n'))
    .listen({ port: Number(a), host: '::', ipv6Only: false }, () => process.stdout.write('ready\n'));
} else {
  let buf = '';
  const s = net.connect({ host: a, port: Number(b) });
  const done = (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  };
  setTimeout(() => done({ ok: false, error: 'timeout' }), Number(c ?? 1000));
  s.on('data', (d) => (buf += d));
  s.on('end', () => done({ ok: true, ...JSON.parse(buf) }));
  s.on('error', (e) => done({ ok: false, error: e.code ?? e.message }));
}
