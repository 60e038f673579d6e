/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one exit of every entry program (bpf/tc_*.c end in `out: return
 * dp_exit(&c, ret);`): helpers only decide (a delivery code or a negated
 * drop reason, see dp_ctx.h); here alone a drop is counted and its event
 * sent, a delivery becomes its redirect, and an explain run's cb words are
 * filled, so every verdict is accounted the same way.
 */
#ifndef BERTH_LIB_DP_VERDICT_H
#define BERTH_LIB_DP_VERDICT_H

#include "dp_events.h"

/* Leaves the decision in the cb words of an explain run (nothing otherwise). */
static __always_inline void explain_out(struct dp_ctx *c, __u32 delivery, __u32 ifindex, __u32 reason)
{
	if (!c->explain)
		return;
	c->skb->cb[BERTH_EXPLAIN_CB_REASON] = reason;
	c->skb->cb[BERTH_EXPLAIN_CB_RULE] = c->rule;
	c->skb->cb[BERTH_EXPLAIN_CB_IFINDEX] = ifindex;
	c->skb->cb[BERTH_EXPLAIN_CB_DELIVERY] = delivery;
}

/* The TC action for helper result @ret, with its accounting. */
static __always_inline int dp_exit(struct dp_ctx *c, int ret)
{
	struct berth_counter *cnt;
	__u32 reason;

	if (ret < 0) {
		reason = -ret;
		if (c->explain) {
			if (!c->rule)
				c->rule = BERTH_RULE_POLICY;
			explain_out(c, BERTH_DELIVERY_DROP, 0, reason);
			return TC_ACT_SHOT;
		}
		cnt = bpf_map_lookup_elem(&berth_dp_drops, &reason);
		if (cnt) {
			cnt->packets++;
			cnt->bytes += c->p.len;
		}
		emit_event(c, BERTH_EVENT_DROP, reason, 0);
		return TC_ACT_SHOT;
	}
	switch (ret) {
	case BERTH_DELIVERY_SANDBOX:
		explain_out(c, BERTH_DELIVERY_SANDBOX, c->oif, 0);
		if (c->hook == BERTH_HOOK_HOST) {
			stat_inc(BERTH_STAT_REDIRECT);
			return bpf_redirect(c->oif, 0);
		}
		/* From an ingress hook straight into the sandbox's namespace, skipping the host's backlog. */
		stat_inc(BERTH_STAT_REDIRECT_PEER);
		return bpf_redirect_peer(c->oif, 0);
	case BERTH_DELIVERY_FIB:
		explain_out(c, BERTH_DELIVERY_FIB, c->oif, 0);
		if (c->neigh) {
			stat_inc(BERTH_STAT_REDIRECT_NEIGH);
			return bpf_redirect_neigh(c->oif, 0, 0, 0);
		}
		stat_inc(BERTH_STAT_REDIRECT);
		return bpf_redirect(c->oif, 0);
	case BERTH_DELIVERY_LO:
		/* Back into lo: the answer of a connection the host opened through lo. */
		explain_out(c, BERTH_DELIVERY_LO, LO_IFINDEX, 0);
		stat_inc(BERTH_STAT_REDIRECT);
		return bpf_redirect(LO_IFINDEX, BPF_F_INGRESS);
	case BERTH_DELIVERY_STACK:
		explain_out(c, BERTH_DELIVERY_STACK, 0, 0);
		stat_inc(BERTH_STAT_TO_STACK);
		return TC_ACT_OK;
	}
	/* BERTH_DELIVERY_NONE: not berth's packet; passed untouched, unaccounted. */
	return TC_ACT_OK;
}

#endif /* BERTH_LIB_DP_VERDICT_H */
