/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rewriting a packet's addresses and ports with correct checksums: the IPv4
 * header checksum, the L4 checksum with its pseudo-header (TCP, UDP,
 * ICMPv6), ICMP echo ids, and SCTP's CRC32c over the whole packet. The
 * csum helpers keep CHECKSUM_PARTIAL (GSO) packets right: they adjust the
 * pseudo-header seed the hardware or the stack completes later.
 */
#ifndef BERTH_LIB_DP_NAT_H
#define BERTH_LIB_DP_NAT_H

#include "dp_pkt.h"
#include "dp_crc32c_table.h"

#define DP_IP4_SRC (ETH_HLEN + 12)
#define DP_IP4_DST (ETH_HLEN + 16)
#define DP_IP4_CSUM (ETH_HLEN + 10)
#define DP_IP6_SRC (ETH_HLEN + 8)
#define DP_IP6_DST (ETH_HLEN + 24)
#define DP_SCTP_MAX_BYTES 2048

/* Offset of the L4 checksum, or 0 when the protocol has none the csum helpers can fix. */
static __always_inline __u32 l4_csum_off(const struct dp_pkt *p)
{
	switch (p->key.proto) {
	case IPPROTO_TCP:
		return p->l4off + 16;
	case IPPROTO_UDP:
		return p->l4off + 6;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return p->l4off + 2;
	}
	return 0;
}

/* Flags for bpf_l4_csum_replace: UDP over IPv4 may carry no checksum (0), which must stay 0. */
static __always_inline __u64 l4_csum_flags(const struct dp_pkt *p)
{
	return p->key.proto == IPPROTO_UDP && p->family == 4 ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Replaces one address (@dst: the destination) by @to. */
static __always_inline int rewrite_addr(struct __sk_buff *skb, const struct dp_pkt *p, int dst, const __u8 *to)
{
	const __u8 *from = dst ? p->key.daddr : p->key.saddr;
	__u32 csum = l4_csum_off(p);
	__u64 fl = l4_csum_flags(p);

	if (addr_eq(from, to))
		return 0;
	if (p->family == 4) {
		__u32 o = *(const __u32 *)(from + 12), n = *(const __u32 *)(to + 12);

		/* ICMPv4 has no pseudo-header; TCP and UDP do. Fragments carry no L4 header. */
		if (csum && p->key.proto != IPPROTO_ICMP && !p->frag &&
		    bpf_l4_csum_replace(skb, csum, o, n, BPF_F_PSEUDO_HDR | fl | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, DP_IP4_CSUM, o, n, 4))
			return -1;
		return bpf_skb_store_bytes(skb, dst ? DP_IP4_DST : DP_IP4_SRC, &n, 4, 0);
	}
	if (csum && !p->frag) {
		__s64 diff = bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);

		if (bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR | fl))
			return -1;
	}
	return bpf_skb_store_bytes(skb, dst ? DP_IP6_DST : DP_IP6_SRC, to, 16, 0);
}

/* Replaces a 16-bit field at @off (a port or an ICMP id) covered by the L4 checksum. */
static __always_inline int rewrite_l4_u16(struct __sk_buff *skb, const struct dp_pkt *p, __u32 off, __u16 from, __u16 to)
{
	__u32 csum = l4_csum_off(p);

	if (from == to)
		return 0;
	if (csum && bpf_l4_csum_replace(skb, csum, from, to, l4_csum_flags(p) | 2))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 2, 0);
}

/*
 * SCTP's checksum: CRC32c of the whole SCTP packet with the checksum field
 * zero, stored little-endian. A global function, verified once.
 */
static __always_inline int sctp_crc_body(struct __sk_buff *skb, __u32 l4off)
{
	__u32 zero = 0, crc = 0xffffffff, len = skb->len, off, i;
	__u8 buf[4];

	if (l4off > 256 || len > l4off + DP_SCTP_MAX_BYTES)
		return -1;
	if (bpf_skb_store_bytes(skb, l4off + 8, &zero, 4, 0))
		return -1;
	off = l4off;
	for (i = 0; i < DP_SCTP_MAX_BYTES / 4; i++) {
		if (off + 4 > len)
			break;
		if (bpf_skb_load_bytes(skb, off, buf, 4))
			return -1;
		crc = crc32c_table[(crc ^ buf[0]) & 0xff] ^ (crc >> 8);
		crc = crc32c_table[(crc ^ buf[1]) & 0xff] ^ (crc >> 8);
		crc = crc32c_table[(crc ^ buf[2]) & 0xff] ^ (crc >> 8);
		crc = crc32c_table[(crc ^ buf[3]) & 0xff] ^ (crc >> 8);
		off += 4;
	}
	/* SCTP packets are padded to four bytes; a tail is malformed but still checksummed. */
	for (i = 0; i < 3; i++) {
		if (off >= len)
			break;
		if (bpf_skb_load_bytes(skb, off, buf, 1))
			return -1;
		crc = crc32c_table[(crc ^ buf[0]) & 0xff] ^ (crc >> 8);
		off++;
	}
	crc = ~crc;
	return bpf_skb_store_bytes(skb, l4off + 8, &crc, 4, 0);
}

/* SCTP's checksum: CRC32c of the whole SCTP packet with the checksum field zero, stored little-endian. Verified once. */
__noinline int berth_sctp_fix_crc(struct __sk_buff *skb, __u32 l4off)
{
	if (!skb)
		return -1;
	return sctp_crc_body(skb, l4off);
}

/*
 * Rewrites the packet from the tuple in p->key to (saddr, daddr, sport,
 * dport) and makes p->key the new tuple. Returns 0 or -1 (a helper failed:
 * the packet is left half-rewritten and must be dropped).
 */
static __always_inline int dp_rewrite(struct __sk_buff *skb, struct dp_pkt *p, const __u8 *saddr, const __u8 *daddr,
				      __u16 sport, __u16 dport)
{
	int ports_changed = 0;

	if (rewrite_addr(skb, p, 0, saddr) || rewrite_addr(skb, p, 1, daddr))
		return -1;
	if (!p->frag) {
		if (p->key.proto == IPPROTO_TCP || p->key.proto == IPPROTO_UDP || p->key.proto == DP_IPPROTO_SCTP) {
			ports_changed = p->key.sport != sport || p->key.dport != dport;
			if (p->key.proto == DP_IPPROTO_SCTP) {
				if (p->key.sport != sport && bpf_skb_store_bytes(skb, p->l4off, &sport, 2, 0))
					return -1;
				if (p->key.dport != dport && bpf_skb_store_bytes(skb, p->l4off + 2, &dport, 2, 0))
					return -1;
				if (ports_changed && berth_sctp_fix_crc(skb, p->l4off))
					return -1;
			} else {
				if (rewrite_l4_u16(skb, p, p->l4off, p->key.sport, sport) ||
				    rewrite_l4_u16(skb, p, p->l4off + 2, p->key.dport, dport))
					return -1;
			}
		} else if (p->icmp_echo == 1) {
			if (rewrite_l4_u16(skb, p, p->l4off + 4, p->key.sport, sport))
				return -1;
		} else if (p->icmp_echo == 2) {
			if (rewrite_l4_u16(skb, p, p->l4off + 4, p->key.dport, dport))
				return -1;
		}
	}
	addr_cpy(p->key.saddr, saddr);
	addr_cpy(p->key.daddr, daddr);
	p->key.sport = sport;
	p->key.dport = dport;
	return 0;
}

/* Sets the Ethernet addresses (NULL: leave that one). */
static __always_inline int set_macs(struct __sk_buff *skb, const __u8 *src, const __u8 *dst)
{
	if (dst && bpf_skb_store_bytes(skb, 0, dst, 6, 0))
		return -1;
	if (src && bpf_skb_store_bytes(skb, 6, src, 6, 0))
		return -1;
	return 0;
}

/*
 * Lowers the MSS option of the TCP SYN whose header is at @l4off to @mss. A
 * connection from the host's loopback (MTU 64 KiB) into a sandbox (its
 * bridge's MTU) would otherwise send segments the veth cannot take. A global
 * function: the verifier checks the option walk once.
 */
__noinline int berth_clamp_mss(struct __sk_buff *skb, __u32 l4off, __u32 mss)
{
	__u8 doff, opt[4];
	__u32 off, end, i;

	if (!skb || l4off > 512)
		return 0;
	if (bpf_skb_load_bytes(skb, l4off + 12, &doff, 1))
		return 0;
	end = l4off + (doff >> 4) * 4;
	off = l4off + 20;
	for (i = 0; i < 10; i++) {
		if (off + 4 > end || off > 1024 || bpf_skb_load_bytes(skb, off, opt, 4))
			return 0;
		if (opt[0] == 0)
			return 0;
		if (opt[0] == 1) {
			off++;
			continue;
		}
		if (opt[0] == 2 && opt[1] == 4) {
			__u16 old = (__u16)opt[2] << 8 | opt[3];

			if (old > mss) {
				__u16 o = bpf_htons(old), n = bpf_htons(mss);

				if (bpf_l4_csum_replace(skb, l4off + 16, o, n, 2))
					return -1;
				return bpf_skb_store_bytes(skb, off + 2, &n, 2, 0);
			}
			return 0;
		}
		if (opt[1] < 2)
			return 0;
		off += opt[1];
	}
	return 0;
}

static __always_inline void clamp_mss(struct __sk_buff *skb, const struct dp_pkt *p, __u16 mss)
{
	if (p->key.proto != IPPROTO_TCP || !(p->tcp_flags & 0x02) || p->frag)
		return;
	berth_clamp_mss(skb, p->l4off, mss);
}

#endif /* BERTH_LIB_DP_NAT_H */
