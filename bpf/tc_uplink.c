/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tc ingress of the uplink: what the outside world sends the host.
 *
 * Replies of masqueraded flows and packets of published flows are
 * translated and redirected into the sandbox; a new connection to a
 * published port is checked against its bind address and allow-list and
 * DNAT-ed, keeping the client's address. Packets for 127.0.0.0/8 or ::1 and
 * packets addressed straight to a sandbox or a gateway (its DNS port too) are
 * dropped, except, on a routed network, packets between two of its members
 * (a sandbox on another host reaching one here, with icc or by a link: the
 * link's entry is held on both ends' hosts, lib/dp_link.h), unless the source
 * is forged: of this host's own block (those addresses live only on this
 * host's bridge), or not of the block of the host that sent it (routed_src_ok). Everything else is
 * the host's business: passed on untouched. Every path ends at the one
 * exit, `out:` (lib/dp_verdict.h).
 */
#include "lib/dp_ct.h"
#include "lib/dp_guard.h"
#include "lib/dp_icmp.h"
#include "lib/dp_link.h"
#include "lib/dp_nat.h"
#include "lib/dp_publish.h"
#include "lib/dp_verdict.h"

/*
 * The source is of routed network @net's subnet too (a member on another
 * host): 1; of this host's own block (the entry keyed by the bridge, @net): -1.
 */
static __always_inline int routed_member(const struct dp_ctx *c, __u32 net)
{
	struct berth_dp_lpm_id k DP_ALIGNED = { .prefixlen = 32 + 128 };
	__u32 *snet;

	addr_cpy(k.a, c->p.key.saddr);
	snet = bpf_map_lookup_elem(&berth_dp_subnets, &k);
	if (!snet || *snet != net)
		return 0;
	k.id = bpf_htonl(net);
	return bpf_map_lookup_elem(&berth_dp_subnets, &k) ? -1 : 1;
}

/*
 * Did a member's packet come from the host whose block holds its source? The
 * route back to the source must leave by the device the packet came in on,
 * to the neighbour that sent it: a host claiming another host's block (its
 * MAC is not that block's next hop) or an address no host holds (routed onto
 * the bridge) fails. Behind a router every block's next hop is the router,
 * so only the device is checked then; a next hop not yet resolved is not
 * judged by its MAC either.
 */
static __always_inline int routed_src_ok(struct dp_ctx *c)
{
	struct bpf_fib_lookup *f = fib_params(c);
	__u32 in = c->skb->ifindex;
	int r;

	if (!f)
		return 1;
	if (c->p.family == 4) {
		f->ipv4_src = *(__u32 *)(c->p.key.daddr + 12);
		f->ipv4_dst = *(__u32 *)(c->p.key.saddr + 12);
	} else {
		__builtin_memcpy(f->ipv6_src, c->p.key.daddr, 16);
		__builtin_memcpy(f->ipv6_dst, c->p.key.saddr, 16);
	}
	f->ifindex = in;
	r = bpf_fib_lookup(c->skb, f, sizeof(*f), 0);
	if (r == BPF_FIB_LKUP_RET_NO_NEIGH)
		return f->ifindex == in;
	return r == BPF_FIB_LKUP_RET_SUCCESS && f->ifindex == in && mac_eq(f->dmac, c->p.smac);
}

SEC("tc")
int berth_from_uplink(struct __sk_buff *skb)
{
	struct dp_ctx c = { .skb = skb, .local = -1, .hook = BERTH_HOOK_UPLINK };
	struct berth_dp_lpm_id sk DP_ALIGNED = { .prefixlen = 32 + 128 };
	const struct berth_dp_pub *pub;
	const struct berth_dp_net *net;
	const struct berth_dp_ep *dep;
	__u32 *snet;
	int ret;

	/* Not IP, or not even Ethernet: the host's business, as it came. */
	if (parse_pkt(skb, &c.p) != 0) {
		ret = BERTH_DELIVERY_NONE;
		goto out;
	}
	dp_begin(&c);
	c.in_ifindex = skb->ifindex;
	ret = known_flow(&c);
	if (ret != BERTH_DELIVERY_NONE)
		goto out;
	if (addr_loopback(c.p.key.daddr)) {
		ret = -BERTH_DROP_LOOPBACK;
		goto out;
	}
	pub = pub_find(&c);
	if (pub) {
		ret = publish(&c, pub);
		goto out;
	}
	addr_cpy(sk.a, c.p.key.daddr);
	snet = bpf_map_lookup_elem(&berth_dp_subnets, &sk);
	if (snet) {
		net = bpf_map_lookup_elem(&berth_dp_nets, snet);
		if (net && (net->flags & BERTH_NET_ROUTED)) {
			int m = routed_member(&c, *snet);

			if (m) {
				c.rule = BERTH_RULE_ICC;
				if (m < 0 || !routed_src_ok(&c))
					ret = -BERTH_DROP_SPOOF_IP;
				else if (!(net->flags & BERTH_NET_ICC) && (ret = link_admit(&c)) < 0)
					goto out;
				else {
					/* A sandbox here: straight into its namespace; else (an address no sandbox holds) the bridge decides. */
					dep = bpf_map_lookup_elem(&berth_dp_ep_ip, c.p.key.daddr);
					ret = dep && dep->net == *snet ? to_endpoint(&c, dep, 0) : to_stack(&c, c.rule);
				}
				goto out;
			}
		}
		/* The embedded DNS is no resolver for the LAN: named apart from other direct traffic. */
		ret = net && is_gateway_dns(&c.p, net) ? -BERTH_DROP_DNS_OUTSIDE : -BERTH_DROP_DIRECT;
		goto out;
	}
	ret = to_stack(&c, BERTH_RULE_NOT_OURS);
out:
	return dp_exit(&c, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
