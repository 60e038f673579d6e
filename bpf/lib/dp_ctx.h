/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One program run: the context every helper takes (the packet, the clock,
 * the hook, whether this is a `berth explain` run, what rule decided and
 * where a redirect goes), and the counters helpers bump on the way
 * (berth_dp_stats, berth_dp_traffic).
 *
 * Helpers that decide return an enum berth_delivery, or a drop as the
 * negated enum berth_drop_reason; BERTH_DELIVERY_NONE means "not decided
 * here, go on". Only the entry program's exit (dp_verdict.h) turns that into
 * a TC action.
 */
#ifndef BERTH_LIB_DP_CTX_H
#define BERTH_LIB_DP_CTX_H

#include "dp_maps.h"
#include "dp_pkt.h"

#define SEC_NS 1000000000ULL
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define LO_IFINDEX 1

struct dp_ctx {
	struct __sk_buff *skb;
	struct dp_pkt p;
	__u64 now;
	__u32 in_ifindex;	/* the device route lookups take as input */
	__u8 hook;		/* enum berth_hook */
	__s8 local;		/* destination is the host's: -1 unknown, 0, 1 */
	__u8 explain;		/* a `berth explain` test run: decide, change nothing */
	__u8 rule;		/* enum berth_rule: what decided (for explain) */
	__u8 neigh;		/* BERTH_DELIVERY_FIB with the next hop's MAC unknown: the kernel resolves it */
	__u32 oif;		/* where BERTH_DELIVERY_SANDBOX or _FIB redirects to */
};

/* Sets up @c for a program run: the clock, and whether this is an explain run. */
static __always_inline void dp_begin(struct dp_ctx *c)
{
	c->now = bpf_ktime_get_ns();
	c->explain = c->skb->mark == BERTH_EXPLAIN_MARK;
}


/* Counts one in berth_dp_stats slot @slot (enum berth_dp_stat). */
static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&berth_dp_stats, &slot);

	if (v)
		(*v)++;
}

/* Counts a packet under @kind/@id in berth_dp_traffic. */
static __always_inline void traffic(__u32 kind, __u32 id, __u32 len)
{
	__u64 k = (__u64)kind << 32 | id;
	struct berth_counter *c = bpf_map_lookup_elem(&berth_dp_traffic, &k);

	if (!c) {
		struct berth_counter init = {};

		bpf_map_update_elem(&berth_dp_traffic, &k, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&berth_dp_traffic, &k);
		if (!c)
			return;
	}
	c->packets++;
	c->bytes += len;
}

#endif /* BERTH_LIB_DP_CTX_H */
