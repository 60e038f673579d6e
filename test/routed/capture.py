#!/usr/bin/env python3
"""Captures IPv4 frames on one interface (AF_PACKET) for a few seconds and
prints a JSON summary: each (source, destination, protocol) seen with its
count, and how many were UDP to the VXLAN port 4789.

usage: capture.py IFACE SECONDS
"""
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003

iface, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((iface, 0))
s.settimeout(0.2)
flows = {}
vxlan = 0
frames = 0
# Says it listens, so the caller starts its traffic only then.
print("ready", flush=True)
end = time.time() + secs
while time.time() < end:
    try:
        f = s.recv(65535)
    except socket.timeout:
        continue
    frames += 1
    if len(f) < 34 or struct.unpack("!H", f[12:14])[0] != 0x0800:
        continue
    ihl = (f[14] & 0x0F) * 4
    proto = f[23]
    src = socket.inet_ntoa(f[26:30])
    dst = socket.inet_ntoa(f[30:34])
    if proto == 17 and len(f) >= 14 + ihl + 4 and struct.unpack("!H", f[14 + ihl + 2:14 + ihl + 4])[0] == 4789:
        vxlan += 1
    k = f"{src}>{dst}/{proto}"
    flows[k] = flows.get(k, 0) + 1
print(json.dumps({"frames": frames, "vxlan": vxlan, "flows": flows}), flush=True)
