#!/usr/bin/env python3
"""SCTP for the conformance suite on a kernel without SCTP sockets (CONFIG_IP_SCTP unset):
an INIT chunk sent over a raw IP socket, and a raw listener that reports the first SCTP
packet for a port as it arrived (after the host's NAT). Netfilter tracks and NATs SCTP
without the SCTP socket layer.

  sctp.py send DST DPORT [SPORT]      one INIT; exit 0
  sctp.py listen PORT TIMEOUT_S       prints {"src","dst","sport","dport"} for the first packet to PORT; exit 1 on timeout
"""
import json
import os
import select
import socket
import struct
import sys
import time

POLY = 0x82F63B78  # CRC32c (Castagnoli), reflected
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def init_packet(sport: int, dport: int) -> bytes:
    tag = int.from_bytes(os.urandom(4), 'big') | 1
    # INIT: type 1, flags 0, length 20; initiate tag, a_rwnd, out streams, in streams, initial TSN
    chunk = struct.pack('!BBHIIHHI', 1, 0, 20, tag, 65535, 1, 1, 1)
    pkt = struct.pack('!HHII', sport, dport, 0, 0) + chunk
    # The checksum goes on the wire least significant byte first (RFC 4960 appendix B, as Linux writes it).
    return pkt[:8] + struct.pack('<I', crc32c(pkt)) + pkt[12:]


def main() -> int:
    mode = sys.argv[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_SCTP)
    if mode == 'send':
        dst, dport = sys.argv[2], int(sys.argv[3])
        sport = int(sys.argv[4]) if len(sys.argv) > 4 else 40000 + os.getpid() % 20000
        s.sendto(init_packet(sport, dport), (dst, 0))
        return 0
    port, deadline = int(sys.argv[2]), time.time() + float(sys.argv[3])
    print('ready', flush=True)
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return 1
        data = s.recv(65535)
        ihl = (data[0] & 0x0F) * 4
        sport, dport = struct.unpack('!HH', data[ihl:ihl + 4])
        if dport == port:
            print(json.dumps({'src': socket.inet_ntoa(data[12:16]), 'dst': socket.inet_ntoa(data[16:20]), 'sport': sport, 'dport': dport}), flush=True)
            return 0


if __name__ == '__main__':
    sys.exit(main())
