/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Published ports: finding the publish that covers a packet in the
 * two-generation table (berth_dp_pub, berth_dp_pubsel) and its source
 * allow-list (berth_dp_allow). What a match becomes is DNAT (dp_nat.h).
 */
#ifndef BERTH_LIB_DP_PUBLISH_H
#define BERTH_LIB_DP_PUBLISH_H

#include "dp_deliver.h"

/* Entries a generation of berth_dp_pub holds: set by the loader with the map's size. */
const volatile __u32 cfg_pub_max = BERTH_PUB_MAX;

/*
 * The walk back of pub_find(), from entry @lo - 1 over at most @walk + 1
 * entries, for the protocol and port in @want ((proto << 16) | port) and the
 * destination @dst. A global function: the verifier checks it once, not once
 * per path into it. Returns the matching entry's index + 1 for a bind
 * address that matches (or a loopback bind seen from the host: @walk_host's high half),
 * minus (index + 1) for an all-address publish of the packet's family (it
 * matches if the destination is the host's), or 0.
 */
__noinline int berth_pub_walk(__u32 base, __u32 lo, __u32 walk_host, __u32 want, const struct berth_dp_addr *dst)
{
	__u32 i, idx, proto = want >> 16, port = want & 0xffff, walk = walk_host & 0xffff, from_host = walk_host >> 16;
	const struct berth_dp_pub *e;
	int any = 0, v4;

	if (!dst)
		return 0;
	v4 = addr_is4(dst->a);
	for (i = 0; i <= BERTH_PUB_WALK; i++) {
		if (i > walk || lo == 0)
			break;
		lo--;
		idx = base + lo;
		e = bpf_map_lookup_elem(&berth_dp_pub, &idx);
		if (!e || e->proto != proto)
			break;
		if (port > e->end)
			continue;
		if (e->flags & BERTH_PUB_LOOPBACK) {
			/* 127.0.0.1 and ::1 binds: only the host's own connections, whatever a crafted packet says. */
			if (from_host && addr_eq(dst->a, e->host_ip))
				return idx + 1;
		} else if (e->flags & (BERTH_PUB_ANY4 | BERTH_PUB_ANY6)) {
			/* An all-address publish never overlaps another of its protocol: at most one. */
			if (e->flags & (v4 ? BERTH_PUB_ANY4 : BERTH_PUB_ANY6))
				any = idx + 1;
		} else if (addr_eq(dst->a, e->host_ip)) {
			return idx + 1;
		}
	}
	return -any;
}

/*
 * The publish covering the packet's protocol and destination port, if any:
 * a binary search for the last entry starting at or below the port, then a
 * walk back over the entries whose ranges may still cover it (ranges of
 * other bind addresses can overlap; user space counts them in `walk`).
 */
static __always_inline const struct berth_dp_pub *pub_find(struct dp_ctx *c)
{
	__u32 zero = 0, base, n, lo = 0, hi, idx, i;
	__u32 want, port = bpf_ntohs(c->p.key.dport);
	const struct berth_dp_pub *e;
	__u32 *sel;
	int r;

	if (c->p.frag || c->p.icmp_echo || c->p.icmp_err)
		return 0;
	if (c->p.key.proto != IPPROTO_TCP && c->p.key.proto != IPPROTO_UDP && c->p.key.proto != DP_IPPROTO_SCTP)
		return 0;
	sel = bpf_map_lookup_elem(&berth_dp_pubsel, &zero);
	if (!sel)
		return 0;
	n = *sel & 0x7fffffff;
	if (!n || n > cfg_pub_max || n > BERTH_PUB_MAX_LIMIT)
		return 0;
	base = (*sel >> BERTH_PUB_GEN_SHIFT) ? cfg_pub_max : 0;
	want = (__u32)c->p.key.proto << 16 | port;
	hi = n;
	for (i = 0; i < 21; i++) { /* log2(BERTH_PUB_MAX_LIMIT) + 1 */
		__u32 mid;

		if (lo >= hi)
			break;
		mid = (lo + hi) / 2;
		idx = base + mid;
		e = bpf_map_lookup_elem(&berth_dp_pub, &idx);
		if (!e)
			return 0;
		if (((__u32)e->proto << 16 | e->start) <= want)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	idx = base + lo - 1;
	e = bpf_map_lookup_elem(&berth_dp_pub, &idx);
	if (!e)
		return 0;
	r = berth_pub_walk(base, lo, (e->walk & 0xffff) | (c->hook == BERTH_HOOK_HOST) << 16, want, (const struct berth_dp_addr *)c->p.key.daddr);
	if (r == 0)
		return 0;
	idx = (r > 0 ? r : -r) - 1;
	e = bpf_map_lookup_elem(&berth_dp_pub, &idx);
	if (!e)
		return 0;
	/* An all-address publish: lo carries only the host's own; elsewhere the FIB says. */
	if (r < 0 && c->hook != BERTH_HOOK_HOST && !dst_is_local(c))
		return 0;
	return e;
}

static __always_inline int allow_ok(const struct dp_ctx *c, const struct berth_dp_pub *e)
{
	struct berth_dp_lpm_id k DP_ALIGNED = { .prefixlen = 32 + 128, .id = bpf_htonl(e->id) };

	if (!(e->flags & BERTH_PUB_ALLOW))
		return 1;
	addr_cpy(k.a, c->p.key.saddr);
	return bpf_map_lookup_elem(&berth_dp_allow, &k) != 0;
}

/*
 * The operator's publish policy of the network behind bridge @bridge:
 * whether source @src may reach its published ports. Decided before the
 * publish's own allow-list, which can only narrow it. The host's own
 * loopback connections (@from_host) are the host, not a neighbour. A global
 * function: the verifier checks it once, not once per path into it.
 */
__noinline int berth_pubpol_ok(__u32 bridge, __u32 from_host, const struct berth_dp_addr *src)
{
	struct berth_dp_lpm_id k DP_ALIGNED = { .prefixlen = 32 + 128, .id = bpf_htonl(bridge) };

	if (!src)
		return 0;
	if (from_host && addr_loopback(src->a))
		return 1;
	addr_cpy(k.a, src->a);
	return bpf_map_lookup_elem(&berth_dp_pubpol, &k) != 0;
}

#endif /* BERTH_LIB_DP_PUBLISH_H */
