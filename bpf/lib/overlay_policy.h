/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy across hosts for bpf/overlay.c, the same on either datapath: the
 * overlay programs take a frame for a remote endpoint before the datapath's
 * own programs see it, so what the datapath enforces between two sandboxes
 * of one host is enforced here for two sandboxes of different hosts.
 *
 * Leaving (ovl_tx_check, on the sandbox's port): the frame must carry the
 * port's own MAC and address (ARP too); on a checked network (icc=false,
 * internal) or from a sandbox with an egress allow-list, its inner
 * destination must be the store's endpoint behind the destination MAC (a
 * peer is never a router out); on icc=false only a link's TCP/UDP port, or a
 * reply of a connection a link admitted, crosses.
 *
 * Entering (ovl_rx_check, on the vxlan device): the inner source must be an
 * endpoint the store places on the sending host (its outer source), with
 * that endpoint's MAC; an address the store does not know passes only on an
 * unchecked network (a plain vxlan peer's own); then the same destination
 * and link checks as on leaving, against this host's endpoints.
 *
 * Both return 0 to pass, or a negative enum berth_drop_reason.
 */
#ifndef BERTH_LIB_OVERLAY_POLICY_H
#define BERTH_LIB_OVERLAY_POLICY_H

#include "common.h"
#include "overlay_maps.h"

#define OVL_ETH_P_ARP 0x0806
#define OVL_ETH_P_IPV6 0x86DD
/* A tracked connection unseen this long is forgotten (ns). */
#define OVL_CT_IDLE_NS (600ULL * 1000000000ULL)

/* What the checks need of a frame, loaded once. */
struct ovl_frame {
	__u8 dmac[6];
	__u8 smac[6];
	__be16 proto;		/* ethertype */
	__be32 saddr;		/* IPv4 source, or the ARP sender address */
	__be32 daddr;		/* IPv4 destination, or the ARP target address */
	__be16 sport;
	__be16 dport;
	__u8 l4;
	__u8 frag;
	__u8 is_ip;
	__u8 is_arp;
	__u8 sha[6];		/* ARP sender MAC */
};

/* MACs here all sit at even offsets: compared as three 16-bit words. */
static __always_inline int __mac_same(const __u8 *a, const __u8 *b)
{
	const __u16 *x = (const __u16 *)a, *y = (const __u16 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

static __always_inline void ovl_drop_count(__u32 reason, __u32 len)
{
	struct berth_counter *c = bpf_map_lookup_elem(&berth_ovl_drops, &reason);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

/* Loads what the checks look at; -BERTH_DROP_MALFORMED when the frame is cut short. */
static __always_inline int ovl_load(struct __sk_buff *skb, struct ovl_frame *f)
{
	struct iphdr ip;
	__u8 arp[28];
	__u16 ports[2];

	if (bpf_skb_load_bytes(skb, 0, f, 14))
		return -BERTH_DROP_MALFORMED;
	if (f->proto == bpf_htons(OVL_ETH_P_ARP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, arp, sizeof(arp)))
			return -BERTH_DROP_MALFORMED;
		f->is_arp = 1;
		__builtin_memcpy(f->sha, arp + 8, 6);
		__builtin_memcpy(&f->saddr, arp + 14, 4);
		__builtin_memcpy(&f->daddr, arp + 24, 4);
		return 0;
	}
	if (f->proto != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.ihl < 5)
		return -BERTH_DROP_MALFORMED;
	f->is_ip = 1;
	f->saddr = ip.saddr;
	f->daddr = ip.daddr;
	f->l4 = ip.protocol;
	f->frag = (ip.frag_off & bpf_htons(0x3fff)) != 0;
	if (!f->frag && (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, ports, sizeof(ports)))
			return -BERTH_DROP_MALFORMED;
		f->sport = ports[0];
		f->dport = ports[1];
	}
	return 0;
}

static __always_inline __u32 ovl_policy_of(__u32 vni)
{
	struct berth_ovl_policy *p = bpf_map_lookup_elem(&berth_ovl_policy, &vni);

	return p ? p->flags : 0;
}

/* Is the tracked connection (or its reverse, a reply) known and fresh? Refreshes it. */
static __always_inline int __ct_seen(struct berth_ovl_ct_key *k, __u64 now)
{
	__u64 *seen = bpf_map_lookup_elem(&berth_ovl_ct, k);

	if (!seen || now - *seen > OVL_CT_IDLE_NS)
		return 0;
	if (now - *seen > 1000000000ULL)
		*seen = now;
	return 1;
}

/*
 * icc=false across hosts: a link's port opens a tracked connection; a packet
 * of a tracked connection (either way) passes; the rest is refused.
 */
static __always_inline int ovl_links(__u32 vni, const struct ovl_frame *f)
{
	struct berth_ovl_link_key lk = {};
	struct berth_ovl_ct_key ck = {};
	__u64 now = bpf_ktime_get_ns();

	if (f->frag)
		return -BERTH_DROP_FRAGMENT;
	if (f->l4 != IPPROTO_TCP && f->l4 != IPPROTO_UDP)
		return -BERTH_DROP_ICC;
	ck.vni = vni;
	ck.saddr = f->saddr;
	ck.daddr = f->daddr;
	ck.sport = f->sport;
	ck.dport = f->dport;
	ck.proto = f->l4;
	if (__ct_seen(&ck, now))
		return 0;
	lk.vni = vni;
	lk.client = f->saddr;
	lk.target = f->daddr;
	lk.port = f->dport;
	lk.proto = f->l4;
	if (bpf_map_lookup_elem(&berth_ovl_links, &lk)) {
		if (bpf_map_update_elem(&berth_ovl_ct, &ck, &now, BPF_ANY))
			return -BERTH_DROP_CT_FULL;
		return 0;
	}
	ck.saddr = f->daddr;
	ck.daddr = f->saddr;
	ck.sport = f->dport;
	ck.dport = f->sport;
	if (__ct_seen(&ck, now))
		return 0;
	return -BERTH_DROP_ICC;
}

/* The reason a frame that leaves its members is refused for. */
static __always_inline int __beyond(__u32 pol)
{
	if (pol & BERTH_OVL_POL_INTERNAL)
		return -BERTH_DROP_INTERNAL;
	if (pol & BERTH_OVL_POL_NO_ICC)
		return -BERTH_DROP_ICC;
	return -BERTH_DROP_EGRESS;
}

/* A frame from local port @ifindex of @vni for a remote MAC: may it leave? */
static __always_inline int ovl_tx_check(struct __sk_buff *skb, __u32 ifindex, __u32 vni)
{
	struct ovl_frame f = {};
	struct berth_ovl_guard *g;
	struct berth_ovl_ip_key ik = { .vni = vni };
	struct berth_ovl_neigh *n;
	__u32 pol;
	int r;

	g = bpf_map_lookup_elem(&berth_ovl_guard, &ifindex);
	if (!g)
		return -BERTH_DROP_NO_CONFIG;
	r = ovl_load(skb, &f);
	if (r < 0)
		return r;
	if (!__mac_same(f.smac, g->mac))
		return -BERTH_DROP_SPOOF_MAC;
	if (f.is_arp)
		return __mac_same(f.sha, g->mac) && (f.saddr == g->v4 || f.saddr == 0) ? 0 : -BERTH_DROP_SPOOF_ARP;
	if (!f.is_ip)
		return f.proto == bpf_htons(OVL_ETH_P_IPV6) ? -BERTH_DROP_FAMILY : -BERTH_DROP_L2;
	if (!g->v4 || f.saddr != g->v4)
		return -BERTH_DROP_SPOOF_IP;
	pol = ovl_policy_of(vni);
	if (!pol && !(g->flags & BERTH_OVL_GUARD_EGRESS))
		return 0;
	ik.ip = f.daddr;
	n = bpf_map_lookup_elem(&berth_ovl_remote_ips, &ik);
	if (!n || !__mac_same(n->mac, f.dmac))
		return __beyond(pol);
	if (pol & BERTH_OVL_POL_NO_ICC)
		return ovl_links(vni, &f);
	return 0;
}

/* A decapsulated frame of @vni sent by underlay host @host (host order): may it enter? */
static __always_inline int ovl_rx_check(struct __sk_buff *skb, __u32 vni, __u32 host)
{
	struct ovl_frame f = {};
	struct berth_ovl_ip_key ik = { .vni = vni };
	struct berth_ovl_mac_key mk = { .vni = vni };
	struct berth_ovl_neigh *n;
	struct berth_ovl_remote *rm;
	__u32 pol = ovl_policy_of(vni);
	int r;

	r = ovl_load(skb, &f);
	if (r < 0)
		return r;
	if (!f.is_ip && !f.is_arp)
		return pol ? -BERTH_DROP_L2 : 0;
	ik.ip = f.saddr;
	n = bpf_map_lookup_elem(&berth_ovl_remote_ips, &ik);
	if (n) {
		/* The store's endpoint: from its host, with its MAC. */
		__builtin_memcpy(mk.mac, n->mac, 6);
		rm = bpf_map_lookup_elem(&berth_ovl_remote_macs, &mk);
		if (!rm || rm->host_ip != host || !__mac_same(f.smac, n->mac))
			return -BERTH_DROP_OVERLAY_SOURCE;
	} else if (bpf_map_lookup_elem(&berth_ovl_local_ips, &ik)) {
		return -BERTH_DROP_OVERLAY_SOURCE;
	} else if (pol && !(f.is_arp && f.saddr == 0)) {
		/* No endpoint the store knows: a plain peer's, admitted on unchecked networks only. */
		return -BERTH_DROP_OVERLAY_SOURCE;
	}
	if (!pol || f.is_arp)
		return 0;
	ik.ip = f.daddr;
	n = bpf_map_lookup_elem(&berth_ovl_local_ips, &ik);
	if (!n || !__mac_same(n->mac, f.dmac))
		return __beyond(pol);
	if (pol & BERTH_OVL_POL_NO_ICC)
		return ovl_links(vni, &f);
	return 0;
}

#endif /* BERTH_LIB_OVERLAY_POLICY_H */
