/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Links on icc=false networks: a link admits its client's new connections to
 * the target's exposed port and tracks them, so replies (and ICMP errors)
 * pass as a known flow. The same check runs where a sandbox sends
 * (tc_container.c) and, on a routed network, where a member on another host
 * arrives from the uplink (tc_uplink.c): each host holds the links with an
 * end of its own.
 */
#ifndef BERTH_LIB_DP_LINK_H
#define BERTH_LIB_DP_LINK_H

#include "dp_ct.h"
#include "dp_events.h"

/* 0 when a link admits this new flow (now tracked), else the drop reason (negative). */
static __always_inline int link_admit(struct dp_ctx *c)
{
	struct berth_dp_link_key lk DP_ALIGNED = {};

	c->rule = BERTH_RULE_POLICY;
	if (c->p.frag || c->p.icmp_echo || c->p.key.proto == IPPROTO_ICMP || c->p.key.proto == IPPROTO_ICMPV6)
		return -BERTH_DROP_ICC;
	addr_cpy(lk.client, c->p.key.saddr);
	addr_cpy(lk.target, c->p.key.daddr);
	lk.port = c->p.key.dport;
	lk.proto = c->p.key.proto;
	if (!bpf_map_lookup_elem(&berth_dp_links, &lk))
		return -BERTH_DROP_ICC;
	c->rule = BERTH_RULE_LINK;
	if (!c->explain && ct_create(&c->p.key, &c->p.key, BERTH_CT_LINK, 0, 0, c->now))
		return -BERTH_DROP_CT_FULL;
	emit_event(c, BERTH_EVENT_FLOW, 0, 0);
	return 0;
}

#endif /* BERTH_LIB_DP_LINK_H */
