/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events for `berth monitor` (ring buffer berth_dp_events, enum
 * berth_event_kind): drops and new connections, while user space has the
 * matching switch on in berth_dp_cfg, at most event_rate a second per CPU;
 * what does not fit is counted, never waited for. Drop events are sent by
 * the exit (dp_verdict.h), new-connection events where the entry is made.
 */
#ifndef BERTH_LIB_DP_EVENTS_H
#define BERTH_LIB_DP_EVENTS_H

#include "dp_ctx.h"

/* Sends a @kind event about the packet (@nt: a new connection's translated tuple), if switched on and within the rate. */
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

#endif /* BERTH_LIB_DP_EVENTS_H */
