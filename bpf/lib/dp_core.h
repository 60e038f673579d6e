/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decisions the three attach points share: verdict accounting and
 * events, the published-port table, allow-lists, translation of flows the
 * connection table knows, and delivery by redirect. Each tc_*.c program
 * parses, applies what only its attach point knows (anti-spoofing for a
 * sandbox's veth, the loopback guard for the uplink) and calls in here.
 */
#ifndef BERTH_LIB_DP_CORE_H
#define BERTH_LIB_DP_CORE_H

#include "dp_maps.h"
#include "dp_pkt.h"
#include "dp_nat.h"
#include "dp_ct.h"

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
};

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

/* Sets up @c for a program run: the clock, and whether this is an explain run. */
static __always_inline void dp_begin(struct dp_ctx *c)
{
	c->now = bpf_ktime_get_ns();
	c->explain = c->skb->mark == BERTH_EXPLAIN_MARK;
}

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

/* Passes the packet on to the host's stack (or, from a sandbox, the bridge), having decided by @rule. */
static __always_inline int to_stack(struct dp_ctx *c, __u8 rule)
{
	c->rule = rule;
	explain_out(c, BERTH_DELIVERY_STACK, 0, 0);
	stat_inc(BERTH_STAT_TO_STACK);
	return TC_ACT_OK;
}

/* The FIB lookup parameters for the packet, in the per-CPU scratch space (NULL: none). */
static __always_inline struct bpf_fib_lookup *fib_params(struct dp_ctx *c)
{
	struct dp_scratch *s = scratch();
	struct bpf_fib_lookup *f;

	if (!s)
		return 0;
	f = &s->fib;
	__builtin_memset(f, 0, sizeof(*f));
	f->ifindex = c->in_ifindex;
	f->l4_protocol = c->p.key.proto;
	f->sport = c->p.key.sport;
	f->dport = c->p.key.dport;
	if (c->p.family == 4) {
		f->family = AF_INET;
		f->ipv4_src = *(__u32 *)(c->p.key.saddr + 12);
		f->ipv4_dst = *(__u32 *)(c->p.key.daddr + 12);
	} else {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, c->p.key.saddr, 16);
		__builtin_memcpy(f->ipv6_dst, c->p.key.daddr, 16);
	}
	return f;
}

/* Is the packet's destination an address of the host (a local route)? */
static __always_inline int dst_is_local(struct dp_ctx *c)
{
	struct bpf_fib_lookup *f;

	if (c->local < 0) {
		f = fib_params(c);
		c->local = f && bpf_fib_lookup(c->skb, f, sizeof(*f), 0) == BPF_FIB_LKUP_RET_NOT_FWDED;
	}
	return c->local;
}

/* Into a sandbox: its MAC, the gateway's as the source (@keep_src: leave it). */
static __always_inline int to_endpoint(struct dp_ctx *c, const struct berth_dp_ep *ep, int keep_src)
{
	const struct berth_dp_net *net = bpf_map_lookup_elem(&berth_dp_nets, &ep->net);

	if (set_macs(c->skb, keep_src || !net ? 0 : net->gw_mac, ep->mac))
		return dp_drop(c, BERTH_DROP_MALFORMED);
	explain_out(c, BERTH_DELIVERY_SANDBOX, ep->ifindex, 0);
	if (!c->explain)
		traffic(BERTH_TRAFFIC_NET_IN, ep->net, c->p.len);
	if (c->hook == BERTH_HOOK_HOST) {
		stat_inc(BERTH_STAT_REDIRECT);
		return bpf_redirect(ep->ifindex, 0);
	}
	/* From an ingress hook straight into the sandbox's namespace, skipping the host's backlog. */
	stat_inc(BERTH_STAT_REDIRECT_PEER);
	return bpf_redirect_peer(ep->ifindex, 0);
}

/* Routes the (translated) packet by the host's FIB and sends it out of the right device. */
static __always_inline int to_fib(struct dp_ctx *c)
{
	struct bpf_fib_lookup *f = fib_params(c);
	int r;

	if (!f)
		return to_stack(c, c->rule);
	r = bpf_fib_lookup(c->skb, f, sizeof(*f), 0);
	if (r == BPF_FIB_LKUP_RET_SUCCESS) {
		if (set_macs(c->skb, f->smac, f->dmac))
			return dp_drop(c, BERTH_DROP_MALFORMED);
		explain_out(c, BERTH_DELIVERY_FIB, f->ifindex, 0);
		stat_inc(BERTH_STAT_REDIRECT);
		return bpf_redirect(f->ifindex, 0);
	}
	if (r == BPF_FIB_LKUP_RET_NO_NEIGH) {
		explain_out(c, BERTH_DELIVERY_FIB, f->ifindex, 0);
		stat_inc(BERTH_STAT_REDIRECT_NEIGH);
		return bpf_redirect_neigh(f->ifindex, 0, 0, 0);
	}
	/* Local, or something the FIB helper does not handle (blackholes, multipath...): the stack decides. */
	return to_stack(c, c->rule);
}

/* Delivers a translated packet: to the host's own stack, a sandbox, or out by the FIB. */
static __always_inline int deliver(struct dp_ctx *c, __u16 ctflags)
{
	const struct berth_dp_ep *ep;

	if (ctflags & BERTH_CT_TO_HOST) {
		__u8 zero[6] = {};

		/* Back into lo: the answer of a connection the host opened through lo. */
		if (set_macs(c->skb, zero, zero))
			return dp_drop(c, BERTH_DROP_MALFORMED);
		explain_out(c, BERTH_DELIVERY_LO, LO_IFINDEX, 0);
		stat_inc(BERTH_STAT_REDIRECT);
		return bpf_redirect(LO_IFINDEX, BPF_F_INGRESS);
	}
	ep = bpf_map_lookup_elem(&berth_dp_ep_ip, c->p.key.daddr);
	if (ep)
		return to_endpoint(c, ep, 0);
	return to_fib(c);
}

/* A packet of a known flow: translate as its entry says and deliver. */
static __always_inline int ct_forward(struct dp_ctx *c, struct berth_ct_val *v)
{
	const struct berth_dp_ep *ep;
	__u16 flags = v->flags;

	c->rule = BERTH_RULE_FLOW;
	if (!c->explain) {
		ct_touch(v, &c->p, c->now);
		if (v->pub_id)
			traffic(BERTH_TRAFFIC_PUB, v->pub_id, c->p.len);
	}
	if (flags & (BERTH_CT_SNAT | BERTH_CT_DNAT)) {
		if (dp_rewrite(c->skb, &c->p, v->saddr, v->daddr, v->sport, v->dport))
			return dp_drop(c, BERTH_DROP_MALFORMED);
		return deliver(c, flags);
	}
	/* Untranslated (a link's flow): straight to the peer on the same network. */
	ep = bpf_map_lookup_elem(&berth_dp_ep_ip, c->p.key.daddr);
	if (ep)
		return to_endpoint(c, ep, 1);
	return to_stack(c, BERTH_RULE_FLOW);
}

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
	if (!n || n > BERTH_PUB_MAX)
		return 0;
	base = (*sel >> BERTH_PUB_GEN_SHIFT) ? BERTH_PUB_MAX : 0;
	want = (__u32)c->p.key.proto << 16 | port;
	hi = n;
	for (i = 0; i < 16; i++) {
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

/* A source port (or ICMP id) for a translated flow whose reply tuple is free; 0 when none was found. */
static __always_inline int pick_sport(struct dp_ctx *c, struct berth_ct_key *nt)
{
	int i;

	if (ct_reply_free(nt, c->now))
		return 1;
	for (i = 0; i < 8; i++) {
		stat_inc(BERTH_STAT_NAT_RETRY);
		nt->sport = bpf_htons(32768 + bpf_get_prandom_u32() % 28232);
		if (ct_reply_free(nt, c->now))
			return 1;
	}
	return 0;
}

/*
 * A new connection to a published port: allow-list, then DNAT to the
 * sandbox. The client's address is kept, except where the sandbox could not
 * answer it: a sandbox reaching its own published port, and the host's
 * loopback; those are masqueraded to the sandbox's gateway.
 */
static __always_inline int publish(struct dp_ctx *c, const struct berth_dp_pub *e)
{
	struct berth_ct_key nt DP_ALIGNED = c->p.key;
	const struct berth_dp_ep *tep;
	const struct berth_dp_net *tnet;
	__u16 flags = BERTH_CT_DNAT | BERTH_CT_PUBLISH, port = bpf_ntohs(c->p.key.dport);

	c->rule = BERTH_RULE_PUBLISH;
	if (!allow_ok(c, e))
		return dp_drop(c, BERTH_DROP_ALLOWLIST);
	tep = bpf_map_lookup_elem(&berth_dp_ep_ip, e->target);
	if (!tep)
		return to_stack(c, BERTH_RULE_PUBLISH);
	tnet = bpf_map_lookup_elem(&berth_dp_nets, &tep->net);
	if (!tnet)
		return dp_drop(c, BERTH_DROP_NO_CONFIG);
	addr_cpy(nt.daddr, e->target);
	nt.dport = bpf_htons(e->cport + (port - e->start));
	if (addr_eq(c->p.key.saddr, e->target) || addr_loopback(c->p.key.saddr)) {
		addr_cpy(nt.saddr, c->p.family == 4 ? tnet->gw4 : tnet->gw6);
		flags |= BERTH_CT_SNAT;
	}
	if (!pick_sport(c, &nt))
		return dp_drop(c, BERTH_DROP_NAT_EXHAUSTED);
	if (nt.sport != c->p.key.sport)
		flags |= BERTH_CT_SNAT;
	if (!c->explain && ct_create(&c->p.key, &nt, flags, c->hook == BERTH_HOOK_HOST ? BERTH_CT_TO_HOST : 0, (__u32)e->proto << 16 | e->start, c->now))
		return dp_drop(c, BERTH_DROP_CT_FULL);
	if (!c->explain)
		traffic(BERTH_TRAFFIC_PUB, (__u32)e->proto << 16 | e->start, c->p.len);
	emit_event(c, BERTH_EVENT_FLOW, 0, &nt);
	if (dp_rewrite(c->skb, &c->p, nt.saddr, nt.daddr, nt.sport, nt.dport))
		return dp_drop(c, BERTH_DROP_MALFORMED);
	if (c->hook == BERTH_HOOK_HOST && tnet->mtu > 100)
		clamp_mss(c->skb, &c->p, tnet->mtu - (c->p.family == 4 ? 40 : 60));
	return to_endpoint(c, tep, 0);
}

#endif /* BERTH_LIB_DP_CORE_H */
