/**
 * The packet checksums berth computes in user space: the Internet checksum
 * (IPv4 header, TCP, UDP, ICMP, ICMPv6, with the pseudo-header where the
 * protocol has one) and SCTP's CRC32c. One module for `berth explain`'s
 * synthetic packets and the harness's packet builders, so both agree with
 * what the kernel verifies.
 */

/** The ones'-complement sum of @buf folded to 16 bits and inverted (RFC 1071); 0 over data whose checksum is valid. */
export function checksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += (buf[buf.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The pseudo-header TCP, UDP and ICMPv6 checksums cover: IPv4 (12 bytes) or IPv6 (40 bytes) by the address length. */
export function pseudoHeader(src: Buffer, dst: Buffer, proto: number, len: number): Buffer {
  if (src.length === 4) return Buffer.concat([src, dst, Buffer.from([0, proto, len >> 8, len & 0xff])]);
  const tail = Buffer.alloc(8);
  tail.writeUInt32BE(len, 0);
  tail[7] = proto;
  return Buffer.concat([src, dst, tail]);
}

/** CRC32c (Castagnoli), reflected, as SCTP uses it. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const b of buf) crc = (CRC32C_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8)) >>> 0;
  return ~crc >>> 0;
}

/** SCTP's checksum field: CRC32c of the packet with the field zero, stored little-endian (as Linux does). */
export function sctpChecksum(seg: Buffer): number {
  const z = Buffer.from(seg);
  z.writeUInt32LE(0, 8);
  return crc32c(z);
}
