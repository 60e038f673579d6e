/**
 * DNS messages as the embedded resolver reads and writes them: decoding a
 * query (and what its reply must respect), encoding our own replies within
 * the client's size limit, checking an upstream's reply against the query,
 * and TCP's length-prefixed framing. Pure, over dns-packet.
 */
import * as dnsPacket from 'dns-packet';
import { normalizeName } from './names.js';

// RFC 1035 without EDNS; what a client gets unless it advertises more.
export const MIN_UDP_PAYLOAD = 512;
// Advertised in our OPT record: the DNS flag day 2020 value.
export const OUR_EDNS_PAYLOAD = 1232;
export const MAX_MESSAGE = 0xffff;

export const NOERROR = 0;
export const FORMERR = 1;
export const SERVFAIL = 2;
export const NXDOMAIN = 3;
export const NOTIMP = 4;
export const REFUSED = 5;
export const BADVERS = 16;

export type Transport = 'udp' | 'tcp';

/** A decoded query and what its reply must respect. */
export interface Query {
  raw: Buffer;
  packet: dnsPacket.DecodedPacket;
  /** The only question; undefined when the query had none or several. */
  question: dnsPacket.Question | undefined;
  /** dns-packet re-encodes the question byte for byte, so our replies can echo it. */
  echoable: boolean;
  opt: dnsPacket.OptAnswer | undefined;
  client: string;
  transport: Transport;
  /** Largest reply the client accepts on this transport. */
  maxSize: number;
}

export function parseQuery(raw: Buffer, client: string, transport: Transport): Query | undefined {
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(raw);
  } catch {
    return undefined;
  }
  const questions = packet.questions ?? [];
  const question = questions.length === 1 ? questions[0] : undefined;
  let echoable = false;
  if (question) {
    try {
      // Unknown classes, labels with dots or bytes that are not UTF-8 do not survive decoding.
      const echo = dnsPacket.encode({ questions: [question] }).subarray(12);
      echoable = raw.subarray(12, 12 + echo.length).equals(echo);
    } catch {
      echoable = false;
    }
  }
  const opt = (packet.additionals ?? []).find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
  const maxSize = transport === 'tcp' ? MAX_MESSAGE : Math.max(MIN_UDP_PAYLOAD, opt?.udpPayloadSize ?? 0);
  return { raw, packet, question, echoable, opt, client, transport, maxSize };
}

/**
 * Our own reply: the query's ID, opcode, RD and (if it could be echoed) its
 * question; RA always, AA for answers of ours. Answers that do not fit the
 * client's limit are cut from the end and TC is set; the client may use those
 * that came (musl does not retry over TCP) or ask again over TCP.
 */
export function encodeReply(q: Query, rcode: number, answers: dnsPacket.Answer[] = [], opts: { aa?: boolean; tc?: boolean } = {}): Buffer {
  const opcodeBits = (q.packet.flags ?? 0) & (0xf << 11);
  let flags = opcodeBits | dnsPacket.RECURSION_AVAILABLE | (rcode & 0xf);
  if (q.packet.flag_rd) flags |= dnsPacket.RECURSION_DESIRED;
  if (opts.aa ?? true) flags |= dnsPacket.AUTHORITATIVE_ANSWER;
  if (opts.tc) flags |= dnsPacket.TRUNCATED_RESPONSE;
  // RFC 6891: a query with OPT gets OPT back; extended RCODEs (BADVERS) live there.
  const additionals: dnsPacket.Answer[] = q.opt
    ? [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: OUR_EDNS_PAYLOAD,
          extendedRcode: rcode >> 4,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ]
    : [];
  const packet = (n: number, tc: boolean): dnsPacket.Packet => ({
    type: 'response',
    id: q.packet.id ?? 0,
    flags: tc ? flags | dnsPacket.TRUNCATED_RESPONSE : flags,
    questions: q.echoable && q.question ? [q.question] : [],
    answers: answers.slice(0, n),
    additionals,
  });
  if (dnsPacket.encodingLength(packet(answers.length, false)) <= q.maxSize) return dnsPacket.encode(packet(answers.length, false));
  // Most answers that fit, by bisection: lengths grow with the answer count.
  let lo = 0;
  let hi = answers.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (dnsPacket.encodingLength(packet(mid, true)) <= q.maxSize) lo = mid;
    else hi = mid - 1;
  }
  return dnsPacket.encode(packet(lo, true));
}

/**
 * Whether a datagram is the reply to our query: 'foreign' for anything else
 * (wrong ID, not a response, other question), an Error for a reply that
 * answers nothing usable.
 */
export function checkReply(msg: Buffer, id: number, question: dnsPacket.Question): 'ok' | 'foreign' | Error {
  if (msg.length < 12 || msg.readUInt16BE(0) !== id) return 'foreign';
  // Only the header and question matter here: a copy with empty record
  // counts decodes those alone, so records dns-packet would choke on are
  // relayed untouched.
  const head = Buffer.from(msg);
  head.fill(0, 6, 12);
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(head);
  } catch {
    return new Error('upstream reply is malformed');
  }
  if (!packet.flag_qr) return 'foreign';
  const questions = packet.questions ?? [];
  if (questions.length === 0) return new Error(`upstream replied rcode ${(packet.flags ?? 0) & 0xf} without the question`);
  const got = questions[0] as dnsPacket.Question;
  const same =
    questions.length === 1 &&
    got.type === question.type &&
    (got.class ?? 'IN') === (question.class ?? 'IN') &&
    normalizeName(got.name) === normalizeName(question.name);
  return same ? 'ok' : 'foreign';
}

export function isTruncated(reply: Buffer): boolean {
  return (reply.readUInt16BE(2) & dnsPacket.TRUNCATED_RESPONSE) !== 0;
}

/** A DNS message with its TCP length prefix (RFC 1035 §4.2.2). */
export function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Complete length-prefixed messages at the front of a TCP stream, and the rest. */
export function takeFrames(buf: Buffer): [Buffer[], Buffer] {
  const frames: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const len = buf.readUInt16BE(off);
    if (buf.length - off - 2 < len) break;
    frames.push(buf.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return [frames, buf.subarray(off)];
}
