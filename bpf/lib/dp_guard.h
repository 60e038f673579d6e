/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox is never a router for its peers: what only a router (or a DHCP
 * server) sends is dropped when a sandbox sends it, and a neighbour
 * advertisement may only speak for the sandbox's own addresses. Run on what
 * a sandbox sends, after its source was checked (tc_container.c).
 *
 * Why at the sandbox's port and not at the receivers: the victims are
 * ordinary sandboxes whose kernels believe an RA to ff02::1 or a redirect
 * from their on-link "gateway"; once accepted, every packet of theirs goes
 * to the attacker. Fragmented ND is dropped by the receivers' kernels
 * themselves (RFC 6980), so a fragment is not looked into here.
 */
#ifndef BERTH_LIB_DP_GUARD_H
#define BERTH_LIB_DP_GUARD_H

#include "dp_ctx.h"

#define DP_ICMP_REDIRECT 5
#define DP_ICMP6_RA 134
#define DP_ICMP6_REDIRECT 137
#define DP_DHCP_SERVER 67
#define DP_DHCP_CLIENT 68
#define DP_DHCP6_SERVER 547
#define DP_DHCP6_CLIENT 546

/* fe80::/64 with the interface id of @mac (modified EUI-64): the link-local address a sandbox's kernel makes. */
static __always_inline void __ll_of_mac(__u8 *a, const __u8 *mac)
{
	__builtin_memset(a, 0, 16);
	a[0] = 0xfe;
	a[1] = 0x80;
	a[8] = mac[0] ^ 0x02;
	a[9] = mac[1];
	a[10] = mac[2];
	a[11] = 0xff;
	a[12] = 0xfe;
	a[13] = mac[3];
	a[14] = mac[4];
	a[15] = mac[5];
}

/* A neighbour advertisement's target must be the sandbox's own address, or its own link-local one. */
static __always_inline int __na_target_ok(struct __sk_buff *skb, const struct dp_pkt *p, const struct berth_dp_ep *ep)
{
	__u8 target[16] DP_ALIGNED;
	__u8 ll[16] DP_ALIGNED;

	/* The target follows the 4-byte ICMPv6 header and 4 bytes of flags. */
	if (bpf_skb_load_bytes(skb, p->l4off + 8, target, 16))
		return 0;
	if ((ep->flags & BERTH_EP_HAS_V6) && addr_eq(target, ep->v6))
		return 1;
	__ll_of_mac(ll, ep->mac);
	return addr_eq(target, ll);
}

/* 0, or the negated drop reason of what a sandbox may not send. */
static __always_inline int guard_not_router(struct __sk_buff *skb, const struct dp_pkt *p, const struct berth_dp_ep *ep)
{
	if (p->frag)
		return 0;
	if (p->key.proto == IPPROTO_ICMP && p->icmp_type == DP_ICMP_REDIRECT)
		return -BERTH_DROP_REDIRECT;
	if (p->key.proto == IPPROTO_ICMPV6) {
		if (p->icmp_type == DP_ICMP6_RA)
			return -BERTH_DROP_ROUTER_ADV;
		if (p->icmp_type == DP_ICMP6_REDIRECT)
			return -BERTH_DROP_REDIRECT;
		if (p->icmp_type == DP_ICMP6_NA && !__na_target_ok(skb, p, ep))
			return -BERTH_DROP_SPOOF_ND;
		return 0;
	}
	if (p->key.proto == IPPROTO_UDP) {
		__u16 sport = bpf_ntohs(p->key.sport), dport = bpf_ntohs(p->key.dport);

		if (p->family == 4 && sport == DP_DHCP_SERVER && dport == DP_DHCP_CLIENT)
			return -BERTH_DROP_DHCP_SERVER;
		if (p->family == 6 && sport == DP_DHCP6_SERVER && dport == DP_DHCP6_CLIENT)
			return -BERTH_DROP_DHCP_SERVER;
	}
	return 0;
}

/* A query to a network's gateway DNS port (53, UDP or TCP) at @dst, @net's gateway. */
static __always_inline int is_gateway_dns(const struct dp_pkt *p, const struct berth_dp_net *net)
{
	if (p->frag || p->key.dport != bpf_htons(53))
		return 0;
	if (p->key.proto != IPPROTO_UDP && p->key.proto != IPPROTO_TCP)
		return 0;
	return addr_eq(p->key.daddr, p->family == 4 ? net->gw4 : net->gw6);
}

#endif /* BERTH_LIB_DP_GUARD_H */
