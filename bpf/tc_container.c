/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tc ingress of every sandbox's host-side veth: what a sandbox sends.
 *
 * In order: the sender must use its own MAC, IP and ARP addresses (and a
 * family its network has), and send nothing only a router sends (router
 * advertisements, redirects, DHCP server replies, neighbour advertisements
 * for others' addresses: lib/dp_guard.h); packets of known flows are translated and
 * delivered; a new flow is then placed: to a sandbox of the same network
 * (icc, or a link on an icc=false network), another network (dropped), a
 * published port on a host address (DNAT), the host itself, or the outside
 * (masqueraded). Sandbox-to-sandbox and published traffic is redirected
 * straight into the peer's namespace; the bridge sees only ARP, neighbour
 * discovery, broadcasts and traffic for the host. Every path ends at the
 * one exit, `out:` (lib/dp_verdict.h).
 */
#include "lib/dp_ct.h"
#include "lib/dp_guard.h"
#include "lib/dp_icmp.h"
#include "lib/dp_link.h"
#include "lib/dp_nat.h"
#include "lib/dp_publish.h"
#include "lib/dp_verdict.h"

struct arp_eth4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

/* ARP may only speak for the sandbox's own MAC and address (0.0.0.0 for address probes). */
static __always_inline int arp_ok(struct __sk_buff *skb, const struct berth_dp_ep *ep)
{
	struct arp_eth4 a;
	__u32 spa;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &a, sizeof(a)))
		return 0;
	if (!mac_eq(a.sha, ep->mac))
		return 0;
	__builtin_memcpy(&spa, a.spa, 4);
	if (spa == 0)
		return 1;
	return (ep->flags & BERTH_EP_HAS_V4) && spa == *(const __u32 *)(ep->v4 + 12);
}

/* The source address must be the sandbox's (IPv6: or link-local, or :: for duplicate address detection). */
static __always_inline int src_ok(const struct dp_pkt *p, const struct berth_dp_ep *ep)
{
	if (p->family == 4)
		return (ep->flags & BERTH_EP_HAS_V4) && addr_eq(p->key.saddr, ep->v4);
	if ((ep->flags & BERTH_EP_HAS_V6) && addr_eq(p->key.saddr, ep->v6))
		return 1;
	if (addr_linklocal6(p->key.saddr))
		return 1;
	return addr_zero(p->key.saddr) && p->key.proto == IPPROTO_ICMPV6 && p->key.daddr[0] == 0xff;
}

static __always_inline int is_nd(const struct dp_pkt *p)
{
	return p->key.proto == IPPROTO_ICMPV6 && (p->icmp_type == DP_ICMP6_NS || p->icmp_type == DP_ICMP6_NA);
}

/* Sandbox to sandbox on one network: icc, or on an icc=false network a link's port (tracked, so replies pass). */
static __always_inline int same_network(struct dp_ctx *c, const struct berth_dp_net *net, const struct berth_dp_ep *dep)
{
	int r;

	c->rule = BERTH_RULE_ICC;
	if (net->flags & BERTH_NET_ICC)
		return to_endpoint(c, dep, 1);
	c->rule = BERTH_RULE_ND;
	if (is_nd(&c->p))
		return to_endpoint(c, dep, 1);
	r = link_admit(c);
	return r ? r : to_endpoint(c, dep, 1);
}

/* Does the sandbox's egress allow-list admit this new connection? */
static __always_inline int egress_ok(const struct dp_ctx *c, const struct berth_dp_ep *ep)
{
	struct berth_dp_lpm_id k DP_ALIGNED = { .prefixlen = 32 + 128, .id = bpf_htonl(ep->ifindex) };
	const struct berth_dp_egress *e;
	__u32 i, n, port = bpf_ntohs(c->p.key.dport);

	addr_cpy(k.a, c->p.key.daddr);
	e = bpf_map_lookup_elem(&berth_dp_egress, &k);
	if (!e)
		return 0;
	n = e->n;
	if (n == 0)
		return 1;
	for (i = 0; i < BERTH_EGRESS_RULES; i++) {
		__u32 r, proto, rport;

		if (i >= n)
			break;
		r = e->rule[i];
		proto = r >> 16;
		rport = r & 0xffff;
		if ((!proto || proto == c->p.key.proto) && (!rport || (rport == port && !c->p.icmp_echo)))
			return 1;
	}
	return 0;
}

/*
 * To a member of a routed network on another host: straight out of the device
 * the host's route to that host's block names (no bridge, no stack). An
 * address no host holds routes onto the bridge: the bridge decides.
 */
static __always_inline int routed_out(struct dp_ctx *c, const struct berth_dp_net *net)
{
	struct bpf_fib_lookup *f = fib_params(c);
	int r;

	if (!f)
		return to_stack(c, BERTH_RULE_SUBNET);
	r = bpf_fib_lookup(c->skb, f, sizeof(*f), 0);
	if ((r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH) || f->ifindex == net->bridge)
		return to_stack(c, BERTH_RULE_SUBNET);
	c->rule = BERTH_RULE_ROUTE;
	c->oif = f->ifindex;
	if (r == BPF_FIB_LKUP_RET_NO_NEIGH) {
		c->neigh = 1;
		return BERTH_DELIVERY_FIB;
	}
	if (set_macs(c->skb, f->smac, f->dmac))
		return -BERTH_DROP_MALFORMED;
	return BERTH_DELIVERY_FIB;
}

static __always_inline int new_flow(struct dp_ctx *c, const struct berth_dp_ep *ep, const struct berth_dp_net *net)
{
	const __u8 *dst = c->p.key.daddr;
	const struct berth_dp_ep *dep;
	const struct berth_dp_pub *pub;
	struct berth_dp_lpm_id sk DP_ALIGNED = { .prefixlen = 32 + 128 };
	__u32 *snet;

	if (addr_multi(dst)) {
		/* Broadcasts and multicast stay on the bridge; icc=false lets only neighbour discovery through. */
		if ((net->flags & BERTH_NET_ICC) || c->p.key.proto == IPPROTO_ICMPV6)
			return to_stack(c, BERTH_RULE_ND);
		return -BERTH_DROP_ICC;
	}
	if (addr_loopback(dst))
		return -BERTH_DROP_LOOPBACK;
	dep = bpf_map_lookup_elem(&berth_dp_ep_ip, dst);
	if (dep) {
		if (dep->net != ep->net)
			return -BERTH_DROP_ISOLATION;
		return same_network(c, net, dep);
	}
	if (c->p.family == 6 && addr_linklocal6(dst)) {
		if ((net->flags & BERTH_NET_ICC) || is_nd(&c->p))
			return to_stack(c, (net->flags & BERTH_NET_ICC) ? BERTH_RULE_ICC : BERTH_RULE_ND);
		return -BERTH_DROP_ICC;
	}
	if (!(net->flags & BERTH_NET_INTERNAL)) {
		pub = pub_find(c);
		if (pub)
			return publish(c, pub);
	}
	if (addr_eq(dst, c->p.family == 4 ? net->gw4 : net->gw6))
		return to_stack(c, BERTH_RULE_GATEWAY);
	addr_cpy(sk.a, dst);
	snet = bpf_map_lookup_elem(&berth_dp_subnets, &sk);
	if (snet) {
		const struct berth_dp_net *onet;

		/*
		 * An address of its own subnet that no sandbox here holds: the bridge
		 * decides, or on a routed network the route to its host's block. Members
		 * on other hosts are reached with icc, or on an icc=false network by a link.
		 */
		if (*snet == ep->net) {
			if (!(net->flags & BERTH_NET_ROUTED))
				return to_stack(c, BERTH_RULE_SUBNET);
			if (!(net->flags & BERTH_NET_ICC)) {
				int r = link_admit(c);

				if (r)
					return r;
			}
			return routed_out(c, net);
		}
		/* Another network's embedded DNS answers only that network's sandboxes. */
		onet = bpf_map_lookup_elem(&berth_dp_nets, snet);
		if (onet && is_gateway_dns(&c->p, onet))
			return -BERTH_DROP_DNS_OUTSIDE;
		return -BERTH_DROP_ISOLATION;
	}
	if (net->flags & BERTH_NET_INTERNAL)
		return -BERTH_DROP_INTERNAL;
	/* Beyond its networks (the host's other addresses included): an egress allow-list decides. */
	if ((ep->flags & BERTH_EP_EGRESS) && !egress_ok(c, ep))
		return -BERTH_DROP_EGRESS;
	if (dst_is_local(c))
		return to_stack(c, BERTH_RULE_HOST);
	if (net->flags & BERTH_NET_MASQ)
		return masquerade(c);
	return to_stack(c, BERTH_RULE_ROUTE);
}

SEC("tc")
int berth_from_container(struct __sk_buff *skb)
{
	struct dp_ctx c = { .skb = skb, .local = -1, .hook = BERTH_HOOK_CONTAINER };
	const struct berth_dp_ep *ep;
	const struct berth_dp_net *net;
	__u32 ifindex = skb->ifindex;
	int r, ret;

	ep = bpf_map_lookup_elem(&berth_dp_ep_if, &ifindex);
	if (!ep) {
		ret = BERTH_DELIVERY_NONE;
		goto out;
	}
	dp_begin(&c);
	r = parse_pkt(skb, &c.p);
	if (r < 0) {
		ret = r;
		goto out;
	}
	net = bpf_map_lookup_elem(&berth_dp_nets, &ep->net);
	if (!net) {
		ret = -BERTH_DROP_NO_CONFIG;
		goto out;
	}
	c.in_ifindex = net->bridge;
	if (!mac_eq(c.p.smac, ep->mac)) {
		ret = -BERTH_DROP_SPOOF_MAC;
		goto out;
	}
	if (r == 1) {
		if (c.p.eth_proto != ETH_P_ARP)
			ret = -BERTH_DROP_L2;
		else if (!arp_ok(skb, ep))
			ret = -BERTH_DROP_SPOOF_ARP;
		else
			ret = to_stack(&c, BERTH_RULE_ND);
		goto out;
	}
	if (!(net->flags & (c.p.family == 4 ? BERTH_NET_V4 : BERTH_NET_V6))) {
		ret = -BERTH_DROP_FAMILY;
		goto out;
	}
	if (!src_ok(&c.p, ep)) {
		ret = -BERTH_DROP_SPOOF_IP;
		goto out;
	}
	ret = guard_not_router(skb, &c.p, ep);
	if (ret < 0)
		goto out;
	if (!c.explain)
		traffic(BERTH_TRAFFIC_NET_OUT, ep->net, c.p.len);
	ret = known_flow(&c);
	if (ret == BERTH_DELIVERY_NONE)
		ret = new_flow(&c, ep, net);
out:
	return dp_exit(&c, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
