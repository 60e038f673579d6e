/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsing a packet into the tuple the datapath decides on, and small address
 * helpers. Addresses are kept 16 bytes wide (IPv4 mapped into IPv6), so one
 * code path and one map serve both families.
 */
#ifndef BERTH_LIB_DP_PKT_H
#define BERTH_LIB_DP_PKT_H

#include "common.h"
#include <linux/tcp.h>
#include <linux/udp.h>

/* ICMP's header, for both versions (<linux/icmp.h> drags in libc headers). */
struct dp_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
};
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#ifndef ETH_P_ARP
#define ETH_P_ARP 0x0806
#endif
#define DP_IPPROTO_SCTP 132
#define DP_ICMP6_ECHO_REQUEST 128
#define DP_ICMP6_ECHO_REPLY 129
#define DP_ICMP6_NS 135
#define DP_ICMP6_NA 136

struct dp_pkt {
	struct berth_ct_key key __attribute__((aligned(8)));	/* the packet's tuple, ports in network order */
	__u8 smac[6];
	__u8 pad1[2];
	__u8 dmac[6];
	__u8 pad2[2];
	__u32 l4off;			/* offset of the L4 header */
	__u32 len;
	__u16 eth_proto;		/* host order */
	__u8 family;			/* 4 or 6 */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 frag;			/* a fragment: no L4 header, or not the first */
	__u8 icmp_echo;			/* 1: request, 2: reply */
	__u8 icmp_err;			/* an ICMP error: embeds another packet's headers */
	__u32 tcp_seq;			/* TCP: sequence and acknowledgement numbers, host order */
	__u32 tcp_ack;
};

static __always_inline void addr_set4(__u8 *a, __u32 v4)
{
	__builtin_memset(a, 0, 10);
	a[10] = 0xff;
	a[11] = 0xff;
	__builtin_memcpy(a + 12, &v4, 4);
}

static __always_inline int addr_is4(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline int addr_zero(const __u8 *a)
{
	const __u64 *x = (const __u64 *)a;

	return x[0] == 0 && x[1] == 0;
}

static __always_inline void addr_cpy(__u8 *d, const __u8 *s)
{
	__u64 *x = (__u64 *)d;
	const __u64 *y = (const __u64 *)s;

	x[0] = y[0];
	x[1] = y[1];
}

/* 127.0.0.0/8 or ::1 */
static __always_inline int addr_loopback(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	if (addr_is4(a))
		return a[12] == 127;
	return w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == bpf_htonl(1);
}

/* fe80::/10 */
static __always_inline int addr_linklocal6(const __u8 *a)
{
	return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

/* IPv4 multicast or limited broadcast, or IPv6 multicast */
static __always_inline int addr_multi(const __u8 *a)
{
	if (addr_is4(a))
		return (a[12] & 0xf0) == 0xe0 || (a[12] == 255 && a[13] == 255 && a[14] == 255 && a[15] == 255);
	return a[0] == 0xff;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b && *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

/* The L4 part of the tuple at @off; ICMP echo ids go in sport (request) or dport (reply). */
static __always_inline int parse_l4(void *data, void *data_end, struct dp_pkt *p, __u8 proto, __u32 off)
{
	p->key.proto = proto;
	p->l4off = off;
	if (p->frag)
		return 0;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;

		if ((void *)(th + 1) > data_end)
			return -BERTH_DROP_MALFORMED;
		p->key.sport = th->source;
		p->key.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_seq = bpf_ntohl(th->seq);
		p->tcp_ack = bpf_ntohl(th->ack_seq);
	} else if (proto == IPPROTO_UDP || proto == DP_IPPROTO_SCTP) {
		/* SCTP's common header starts with the two ports, as UDP's does. */
		struct udphdr *uh = data + off;

		if ((void *)(uh + 1) > data_end)
			return -BERTH_DROP_MALFORMED;
		p->key.sport = uh->source;
		p->key.dport = uh->dest;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		struct dp_icmphdr *ih = data + off;
		int req, rep;

		if ((void *)(ih + 1) > data_end)
			return -BERTH_DROP_MALFORMED;
		p->icmp_type = ih->type;
		p->icmp_code = ih->code;
		if (proto == IPPROTO_ICMP) {
			req = ih->type == ICMP_ECHO;
			rep = ih->type == ICMP_ECHOREPLY;
			p->icmp_err = ih->type == ICMP_DEST_UNREACH || ih->type == ICMP_TIME_EXCEEDED ||
				      ih->type == ICMP_PARAMETERPROB;
		} else {
			req = ih->type == DP_ICMP6_ECHO_REQUEST;
			rep = ih->type == DP_ICMP6_ECHO_REPLY;
			p->icmp_err = ih->type >= 1 && ih->type <= 4;
		}
		if (req) {
			p->icmp_echo = 1;
			p->key.sport = ih->id;
		} else if (rep) {
			p->icmp_echo = 2;
			p->key.dport = ih->id;
		}
	}
	return 0;
}

/*
 * Fills @p from the Ethernet, IP and L4 headers. Returns 0 for IP, 1 for
 * anything else (ARP and the rest: @p has only the MACs and eth_proto), or a
 * negated drop reason.
 */
static __always_inline int parse_pkt(struct __sk_buff *skb, struct dp_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	__builtin_memset(p, 0, sizeof(*p));
	p->len = skb->len;
	if ((void *)(eth + 1) > data_end)
		return -BERTH_DROP_MALFORMED;
	__builtin_memcpy(p->smac, eth->h_source, 6);
	__builtin_memcpy(p->dmac, eth->h_dest, 6);
	p->eth_proto = bpf_ntohs(eth->h_proto);

	if (p->eth_proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return -BERTH_DROP_MALFORMED;
		ihl = ip->ihl * 4;
		p->family = 4;
		addr_set4(p->key.saddr, ip->saddr);
		addr_set4(p->key.daddr, ip->daddr);
		/* More fragments, or an offset: the L4 header may be absent. */
		if (ip->frag_off & bpf_htons(0x3fff))
			p->frag = 1;
		return parse_l4(data, data_end, p, ip->protocol, sizeof(*eth) + ihl);
	}
	if (p->eth_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -BERTH_DROP_MALFORMED;
		__u8 next = ip6->nexthdr;
		__u32 off = sizeof(*eth) + sizeof(*ip6);
		int i;

		p->family = 6;
		__builtin_memcpy(p->key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->key.daddr, &ip6->daddr, 16);
		/* Hop-by-hop, routing and destination options headers are walked (four at most) to the L4 header. */
		for (i = 0; i < 4; i++) {
			__u8 *h = data + off;

			if (next != 0 && next != 43 && next != 60)
				break;
			if ((void *)(h + 2) > data_end)
				return -BERTH_DROP_MALFORMED;
			next = h[0];
			off += ((__u32)h[1] + 1) * 8;
			if (off > 512)
				return -BERTH_DROP_MALFORMED;
		}
		if (next == 0 || next == 43 || next == 60)
			return -BERTH_DROP_MALFORMED;
		/* A fragment header: no ports to be had. */
		if (next == 44)
			p->frag = 1;
		return parse_l4(data, data_end, p, next, off);
	}
	return 1;
}

#endif /* BERTH_LIB_DP_PKT_H */
