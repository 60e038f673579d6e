/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ICMP errors about translated flows (destination unreachable, time
 * exceeded, packet too big, parameter problem): the error embeds the header
 * of a packet as it left the host, translated. Its flow is found by that
 * embedded header (as the reply direction sees it), and both the outer
 * addresses and the embedded addresses, ports or echo id are put back, with
 * the IPv4 header checksums and the ICMP checksum (which covers the embedded
 * bytes) kept right. The embedded L4 checksum is left as it is: it is often
 * cut off, and no stack checks it.
 */
#ifndef BERTH_LIB_DP_ICMP_H
#define BERTH_LIB_DP_ICMP_H

#include "dp_ct.h"
#include "dp_nat.h"

/* Replaces @size (2 or 4) bytes at @off, folding the change into the ICMP checksum at @csum. */
static __always_inline int icmp_store(struct __sk_buff *skb, __u32 csum, __u32 off, const void *to, __u32 size)
{
	__u32 from = 0, n = 0;

	if (bpf_skb_load_bytes(skb, off, &from, size))
		return -1;
	__builtin_memcpy(&n, to, size);
	if (from == n)
		return 0;
	if (bpf_l4_csum_replace(skb, csum, from, n, size))
		return -1;
	return bpf_skb_store_bytes(skb, off, &n, size, 0);
}

/* 16 bytes at @off (an embedded IPv6 address) */
static __always_inline int icmp_store16(struct __sk_buff *skb, __u32 csum, __u32 off, const __u8 *to)
{
	int i;

	for (i = 0; i < 4; i++)
		if (icmp_store(skb, csum, off + i * 4, to + i * 4, 4))
			return -1;
	return 0;
}

/*
 * BERTH_DELIVERY_NONE when the packet is not an error about a flow berth
 * tracks (the caller goes on as for any packet), else the decision.
 */
static __always_inline int icmp_error(struct dp_ctx *c)
{
	struct __sk_buff *skb = c->skb;
	struct berth_ct_key k DP_ALIGNED = {};
	struct berth_ct_val *v;
	__u32 csum = c->p.l4off + 2, inner = c->p.l4off + 8, il4, iaddr, iaddr_len;
	__u8 iproto, b[2], echo = 0;
	__u16 ports[2], id;
	__u16 flags;

	if (c->p.family == 4) {
		struct iphdr ih;

		if (bpf_skb_load_bytes(skb, inner, &ih, sizeof(ih)) || ih.ihl < 5)
			return BERTH_DELIVERY_NONE;
		iproto = ih.protocol;
		il4 = inner + ih.ihl * 4;
		addr_set4(k.saddr, ih.daddr);
		addr_set4(k.daddr, ih.saddr);
		iaddr = inner + 12;
		iaddr_len = 4;
	} else {
		struct ipv6hdr ih;

		if (bpf_skb_load_bytes(skb, inner, &ih, sizeof(ih)))
			return BERTH_DELIVERY_NONE;
		iproto = ih.nexthdr;
		il4 = inner + sizeof(ih);
		__builtin_memcpy(k.saddr, &ih.daddr, 16);
		__builtin_memcpy(k.daddr, &ih.saddr, 16);
		iaddr = inner + 8;
		iaddr_len = 16;
	}
	k.proto = iproto;
	if (iproto == IPPROTO_TCP || iproto == IPPROTO_UDP || iproto == DP_IPPROTO_SCTP) {
		if (bpf_skb_load_bytes(skb, il4, ports, 4))
			return BERTH_DELIVERY_NONE;
		k.sport = ports[1];
		k.dport = ports[0];
	} else if (iproto == IPPROTO_ICMP || iproto == IPPROTO_ICMPV6) {
		/* An error about an echo request: the reply direction's key carries the id as dport. */
		if (bpf_skb_load_bytes(skb, il4, b, 1) || bpf_skb_load_bytes(skb, il4 + 4, &id, 2))
			return BERTH_DELIVERY_NONE;
		if (b[0] != (iproto == IPPROTO_ICMP ? ICMP_ECHO : DP_ICMP6_ECHO_REQUEST))
			return BERTH_DELIVERY_NONE;
		k.dport = id;
		echo = 1;
	} else {
		return BERTH_DELIVERY_NONE;
	}
	v = ct_lookup(&k, c->now);
	if (!v)
		return BERTH_DELIVERY_NONE;
	if (!(v->flags & (BERTH_CT_SNAT | BERTH_CT_DNAT))) {
		const struct berth_dp_ep *ep;

		/* About a flow a link admitted: nothing to put back, only to deliver (as RELATED). */
		if (!(v->flags & BERTH_CT_LINK))
			return BERTH_DELIVERY_NONE;
		ep = bpf_map_lookup_elem(&berth_dp_ep_ip, c->p.key.daddr);
		if (!ep)
			return BERTH_DELIVERY_NONE;
		c->rule = BERTH_RULE_ICMP_ERROR;
		return to_endpoint(c, ep, 1);
	}
	flags = v->flags;
	c->rule = BERTH_RULE_ICMP_ERROR;
	if (!c->explain)
		ct_touch(v, &c->p, c->now);

	/* The embedded packet went forward: its source is the reply's destination, and the other way round. */
	if (c->p.family == 4) {
		__u32 oc = 0, nc = 0;

		if (bpf_skb_load_bytes(skb, inner + 10, &oc, 2))
			return -BERTH_DROP_MALFORMED;
		if (bpf_l3_csum_replace(skb, inner + 10, *(__u32 *)(k.daddr + 12), *(__u32 *)(v->daddr + 12), 4) ||
		    bpf_l3_csum_replace(skb, inner + 10, *(__u32 *)(k.saddr + 12), *(__u32 *)(v->saddr + 12), 4) ||
		    bpf_skb_load_bytes(skb, inner + 10, &nc, 2))
			return -BERTH_DROP_MALFORMED;
		if (oc != nc && bpf_l4_csum_replace(skb, csum, oc, nc, 2))
			return -BERTH_DROP_MALFORMED;
		if (icmp_store(skb, csum, iaddr, v->daddr + 12, 4) || icmp_store(skb, csum, iaddr + 4, v->saddr + 12, 4))
			return -BERTH_DROP_MALFORMED;
	} else {
		if (icmp_store16(skb, csum, iaddr, v->daddr) || icmp_store16(skb, csum, iaddr + 16, v->saddr))
			return -BERTH_DROP_MALFORMED;
	}
	if (echo) {
		if (icmp_store(skb, csum, il4 + 4, &v->dport, 2))
			return -BERTH_DROP_MALFORMED;
	} else if (icmp_store(skb, csum, il4, &v->dport, 2) || icmp_store(skb, csum, il4 + 2, &v->sport, 2)) {
		return -BERTH_DROP_MALFORMED;
	}
	(void)iaddr_len;

	/* The outer header: whichever of its addresses is the flow's takes the translation. */
	{
		__u8 nsrc[16] DP_ALIGNED, ndst[16] DP_ALIGNED;

		addr_cpy(nsrc, addr_eq(c->p.key.saddr, k.saddr) ? v->saddr : c->p.key.saddr);
		addr_cpy(ndst, addr_eq(c->p.key.daddr, k.daddr) ? v->daddr : c->p.key.daddr);
		if (rewrite_addr(skb, &c->p, 0, nsrc) || rewrite_addr(skb, &c->p, 1, ndst))
			return -BERTH_DROP_MALFORMED;
		addr_cpy(c->p.key.saddr, nsrc);
		addr_cpy(c->p.key.daddr, ndst);
	}
	return deliver(c, flags);
}

#endif /* BERTH_LIB_DP_ICMP_H */
