/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events for `berth monitor` (ring buffer berth_dp_events, enum
 * berth_event_kind): drops and new connections, while user space has the
 * matching switch on in berth_dp_cfg, at most event_rate a second per CPU;
 * what does not fit is counted, never waited for. Also the drop accounting.
 */
#ifndef BERTH_LIB_DP_EVENTS_H
#define BERTH_LIB_DP_EVENTS_H

#include "dp_ctx.h"

static __always_inline void emit_event(struct dp_ctx *c, __u8 kind, __u8 reason, const struct berth_ct_key *nt)
{
	__u32 zero = 0, one = 1;
	struct berth_dp_cfg *cfg = bpf_map_lookup_elem(&berth_dp_cfg, &zero);
	struct berth_dp_event *ev;
	__u64 *sec, *n, now_s;

	if (c->explain || !cfg || !cfg->event_rate)
		return;
	if (!(cfg->flags & (kind == BERTH_EVENT_DROP ? BERTH_CFG_EVENTS_DROP : BERTH_CFG_EVENTS_FLOW)))
		return;
	sec = bpf_map_lookup_elem(&berth_dp_evrate, &zero);
	n = bpf_map_lookup_elem(&berth_dp_evrate, &one);
	if (!sec || !n)
		return;
	now_s = c->now / SEC_NS;
	if (*sec != now_s) {
		*sec = now_s;
		*n = 0;
	}
	if (*n >= cfg->event_rate) {
		stat_inc(BERTH_STAT_EVENTS_LOST);
		return;
	}
	(*n)++;
	ev = bpf_ringbuf_reserve(&berth_dp_events, sizeof(*ev), 0);
	if (!ev) {
		stat_inc(BERTH_STAT_EVENTS_LOST);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = c->now;
	addr_cpy(ev->saddr, c->p.key.saddr);
	addr_cpy(ev->daddr, c->p.key.daddr);
	ev->sport = c->p.key.sport;
	ev->dport = c->p.key.dport;
	ev->proto = c->p.key.proto;
	ev->kind = kind;
	ev->reason = reason;
	ev->hook = c->hook;
	ev->ifindex = c->skb->ifindex;
	if (nt) {
		addr_cpy(ev->nsaddr, nt->saddr);
		addr_cpy(ev->ndaddr, nt->daddr);
		ev->nsport = nt->sport;
		ev->ndport = nt->dport;
	}
	bpf_ringbuf_submit(ev, 0);
}

/* Counts the drop under its reason and says TC_ACT_SHOT. */
static __always_inline int dp_drop(struct dp_ctx *c, __u32 reason)
{
	struct berth_counter *cnt;

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


#endif /* BERTH_LIB_DP_EVENTS_H */
