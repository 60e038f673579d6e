// A stand-in for the outside world's DNS server, run inside the test's "ext"
// namespace: answers A queries for *.outside.test with 203.0.113.7 and
// NXDOMAIN for everything else. Usage: node fake-upstream.mjs BIND_ADDR [ANSWER]
// Prints "ready" once listening, then "seen CLIENT NAME" for every query, so a
// test knows exactly what reached the upstream and from whom.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const bind = process.argv[2];
const answer = process.argv[3] ?? '203.0.113.7';
const sock = dgram.createSocket(bind.includes(':') ? 'udp6' : 'udp4');
sock.on('message', (msg, rinfo) => {
  let q;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return;
  }
  const question = q.questions?.[0];
  process.stdout.write(`seen ${rinfo.address} ${question?.name ?? ''}\n`);
  const ours = question && question.type === 'A' && question.name.toLowerCase().endsWith('outside.test');
  const reply = dnsPacket.encode({
    id: q.id,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (ours ? 0 : 3),
    questions: q.questions,
    answers: ours ? [{ type: 'A', name: question.name, ttl: 60, data: answer }] : [],
  });
  sock.send(reply, rinfo.port, rinfo.address);
});
sock.bind(53, bind, () => process.stdout.write('ready\n'));
