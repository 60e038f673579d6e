#!/usr/bin/env python3
"""Pieces of the connection-table flood test (ct-flood.test.ts).

  flood.py syn SRC_PREFIX24 DST PORT COUNT    COUNT TCP SYNs to DST:PORT from spoofed sources
                                              SRC_PREFIX24.128-.254, random source ports
                                              (raw socket); prints {"sent": N}
  flood.py quiet PORT                         serve one connection on PORT: read a line "N",
                                              stay silent N seconds, say "hello", echo one line
  flood.py held HOST PORT SECONDS             connect, ask for SECONDS of silence, then expect
                                              "hello" first and an echo of "bye"; prints one JSON line
"""
import json, random, socket, struct, sys, time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(prefix, dst, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    d = socket.inet_aton(dst)
    sent = 0
    for i in range(count):
        src = socket.inet_aton("%s.%d" % (prefix, 128 + i % 127))
        sport = random.randint(1024, 65535)
        tcp = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
        c = csum(src + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
        tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, d)
        try:
            s.sendto(ip + tcp, (dst, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
    print(json.dumps({"sent": sent}))


def quiet(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(8)
    srv.settimeout(120)
    conn, _ = srv.accept()
    conn.settimeout(120)
    f = conn.makefile("rwb", buffering=0)
    time.sleep(float(f.readline()))
    f.write(b"hello\n")
    f.write(f.readline())
    time.sleep(1)


def held(host, port, seconds):
    out = {"connected": False, "hello": False, "echo": False, "error": None}
    try:
        s = socket.create_connection((host, port), timeout=5)
        out["connected"] = True
        s.settimeout(float(seconds) + 10)
        f = s.makefile("rwb", buffering=0)
        f.write(("%s\n" % seconds).encode())
        out["hello"] = f.readline() == b"hello\n"
        f.write(b"bye\n")
        out["echo"] = f.readline() == b"bye\n"
    except Exception as e:
        out["error"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "syn":
        syn(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "quiet":
        quiet(int(args[0]))
    elif cmd == "held":
        held(args[0], int(args[1]), args[2])
