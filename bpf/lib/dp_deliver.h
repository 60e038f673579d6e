/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery: where a decided packet goes (into a sandbox's namespace, out of
 * a host interface by the FIB, back into lo, or on to the stack), with the
 * MACs set for it, and the route lookups deciding takes (fib_params,
 * dst_is_local). These return the delivery code; the redirect itself is
 * the exit's (dp_verdict.h).
 */
#ifndef BERTH_LIB_DP_DELIVER_H
#define BERTH_LIB_DP_DELIVER_H

#include "dp_ctx.h"

/* Sets the Ethernet addresses (NULL: leave that one). */
static __always_inline int set_macs(struct __sk_buff *skb, const __u8 *src, const __u8 *dst)
{
	if (dst && bpf_skb_store_bytes(skb, 0, dst, 6, 0))
		return -1;
	if (src && bpf_skb_store_bytes(skb, 6, src, 6, 0))
		return -1;
	return 0;
}

/* Passes the packet on to the host's stack (or, from a sandbox, the bridge), having decided by @rule. */
static __always_inline int to_stack(struct dp_ctx *c, __u8 rule)
{
	c->rule = rule;
	return BERTH_DELIVERY_STACK;
}

/* The FIB lookup parameters for the packet, in the per-CPU scratch space (NULL: none). */
static __always_inline struct bpf_fib_lookup *fib_params(struct dp_ctx *c)
{
	struct dp_scratch *s = scratch();
	struct bpf_fib_lookup *f;

	if (!s)
		return 0;
	f = &s->fib;
	__builtin_memset(f, 0, sizeof(*f));
	f->ifindex = c->in_ifindex;
	f->l4_protocol = c->p.key.proto;
	f->sport = c->p.key.sport;
	f->dport = c->p.key.dport;
	if (c->p.family == 4) {
		f->family = AF_INET;
		f->ipv4_src = *(__u32 *)(c->p.key.saddr + 12);
		f->ipv4_dst = *(__u32 *)(c->p.key.daddr + 12);
	} else {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, c->p.key.saddr, 16);
		__builtin_memcpy(f->ipv6_dst, c->p.key.daddr, 16);
	}
	return f;
}

/* Is the packet's destination an address of the host (a local route)? */
static __always_inline int dst_is_local(struct dp_ctx *c)
{
	struct bpf_fib_lookup *f;

	if (c->local < 0) {
		f = fib_params(c);
		c->local = f && bpf_fib_lookup(c->skb, f, sizeof(*f), 0) == BPF_FIB_LKUP_RET_NOT_FWDED;
	}
	return c->local;
}

/* Into a sandbox: its MAC, the gateway's as the source (@keep_src: leave it). */
static __always_inline int to_endpoint(struct dp_ctx *c, const struct berth_dp_ep *ep, int keep_src)
{
	const struct berth_dp_net *net = bpf_map_lookup_elem(&berth_dp_nets, &ep->net);

	if (set_macs(c->skb, keep_src || !net ? 0 : net->gw_mac, ep->mac))
		return -BERTH_DROP_MALFORMED;
	if (!c->explain)
		traffic(BERTH_TRAFFIC_NET_IN, ep->net, c->p.len);
	c->oif = ep->ifindex;
	return BERTH_DELIVERY_SANDBOX;
}

/* Routes the (translated) packet by the host's FIB and sends it out of the right device. */
static __always_inline int to_fib(struct dp_ctx *c)
{
	struct bpf_fib_lookup *f = fib_params(c);
	int r;

	if (!f)
		return to_stack(c, c->rule);
	r = bpf_fib_lookup(c->skb, f, sizeof(*f), 0);
	if (r == BPF_FIB_LKUP_RET_SUCCESS) {
		if (set_macs(c->skb, f->smac, f->dmac))
			return -BERTH_DROP_MALFORMED;
		c->oif = f->ifindex;
		return BERTH_DELIVERY_FIB;
	}
	if (r == BPF_FIB_LKUP_RET_NO_NEIGH) {
		c->oif = f->ifindex;
		c->neigh = 1;
		return BERTH_DELIVERY_FIB;
	}
	/* Local, or something the FIB helper does not handle (blackholes, multipath...): the stack decides. */
	return to_stack(c, c->rule);
}

/* Delivers a translated packet: to the host's own stack, a sandbox, or out by the FIB. */
static __always_inline int deliver(struct dp_ctx *c, __u16 ctflags)
{
	const struct berth_dp_ep *ep;

	if (ctflags & BERTH_CT_TO_HOST) {
		__u8 zero[6] = {};

		/* Back into lo: the answer of a connection the host opened through lo. */
		if (set_macs(c->skb, zero, zero))
			return -BERTH_DROP_MALFORMED;
		return BERTH_DELIVERY_LO;
	}
	ep = bpf_map_lookup_elem(&berth_dp_ep_ip, c->p.key.daddr);
	if (ep)
		return to_endpoint(c, ep, 0);
	return to_fib(c);
}


#endif /* BERTH_LIB_DP_DELIVER_H */
