/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking: two entries a flow, one per direction, each keyed on
 * the tuple its packets carry on arrival and holding the tuple they leave
 * with. Entries expire by protocol (TCP 6 h, 65 s once closing; UDP and
 * SCTP 2 min; ICMP 30 s): a lookup treats an expired entry as absent, user
 * space's garbage collector removes it, and the LRU map evicts the least
 * recently used under pressure.
 *
 * A new flow's entries go to berth_dp_ct_new (30 s) and move to berth_dp_ct
 * once the client shows it receives the replies (ct_progress): a flood of
 * spoofed SYNs or datagrams then churns only the unconfirmed table, and
 * never evicts an established flow.
 *
 * Owns the table (lookup, create, touch, the reply tuple's freedom) and the
 * packets of flows it knows (known_flow: translate as the entry says and
 * deliver, or an ICMP error about one, dp_icmp.h). New flows are created by
 * the translations (dp_nat.h) and by links (tc_container.c).
 */
#ifndef BERTH_LIB_DP_CT_H
#define BERTH_LIB_DP_CT_H

#include "dp_ctx.h"
#include "dp_deliver.h"

#define CT_TCP_NS (6ULL * 3600 * SEC_NS)
/*
 * A closed TCP flow keeps its tuples while an end may still hold them in
 * TIME_WAIT (Linux: 60 s, plus the refresh granularity below). Freed sooner,
 * a new flow from another front end (the same client port to another
 * published port of the same sandbox port) is handed the sandbox-side tuple
 * of one the sandbox still holds: its SYN carries another ISN and timestamp
 * offset (both per 4-tuple), PAWS refuses it, and the client gets the old
 * connection's ACK, resets it and retransmits its SYN.
 */
#define CT_CLOSING_NS (65ULL * SEC_NS)
#define CT_UDP_NS (120ULL * SEC_NS)
#define CT_ICMP_NS (30ULL * SEC_NS)
/* an unconfirmed flow: a handshake takes far less; a one-way stream refreshes it */
#define CT_NEW_NS (30ULL * SEC_NS)
/* last_seen is refreshed at most this often: fewer writes to a shared cache line */
#define CT_REFRESH_NS (SEC_NS)

static __always_inline __u64 ct_timeout(__u8 proto, __u16 flags)
{
	if (flags & BERTH_CT_NEW)
		return CT_NEW_NS;
	if (proto == IPPROTO_TCP)
		return flags & BERTH_CT_CLOSING ? CT_CLOSING_NS : CT_TCP_NS;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return CT_ICMP_NS;
	return CT_UDP_NS;
}

/* @k's entry in either table, live or not (the established table first). */
static __always_inline struct berth_ct_val *ct_find(const struct berth_ct_key *k)
{
	struct berth_ct_val *v = bpf_map_lookup_elem(&berth_dp_ct, k);

	if (v)
		return v;
	return bpf_map_lookup_elem(&berth_dp_ct_new, k);
}

static __always_inline void ct_delete(const struct berth_ct_key *k)
{
	bpf_map_delete_elem(&berth_dp_ct, k);
	bpf_map_delete_elem(&berth_dp_ct_new, k);
}

static __always_inline struct berth_ct_val *ct_live(struct berth_ct_val *v, __u8 proto, __u64 now)
{
	if (!v)
		return 0;
	if (now - v->last_seen > ct_timeout(proto, v->flags)) {
		stat_inc(BERTH_STAT_CT_EXPIRED_HIT);
		return 0;
	}
	return v;
}

/* @k's live entry: an expired one in the established table leaves the unconfirmed one its say. */
static __always_inline struct berth_ct_val *ct_lookup(const struct berth_ct_key *k, __u64 now)
{
	struct berth_ct_val *v = ct_live(bpf_map_lookup_elem(&berth_dp_ct, k), k->proto, now);

	if (v)
		return v;
	return ct_live(bpf_map_lookup_elem(&berth_dp_ct_new, k), k->proto, now);
}

/*
 * The packet's own connection entry. ICMP other than echo has none: an error
 * is found by the header it embeds (dp_icmp.h), and its all-zero ports must
 * not match an echo flow whose id is 0.
 */
static __always_inline struct berth_ct_val *ct_lookup_pkt(const struct dp_pkt *p, __u64 now)
{
	if ((p->key.proto == IPPROTO_ICMP || p->key.proto == IPPROTO_ICMPV6) && !p->icmp_echo)
		return 0;
	return ct_lookup(&p->key, now);
}

/* The key of the packets answering a packet that leaves with tuple (@s, @d, @sp, @dp). */
static __always_inline void ct_reverse(struct berth_ct_key *r, const __u8 *s, const __u8 *d, __u16 sp, __u16 dp, __u8 proto)
{
	__builtin_memset(r, 0, sizeof(*r));
	addr_cpy(r->saddr, d);
	addr_cpy(r->daddr, s);
	r->sport = dp;
	r->dport = sp;
	r->proto = proto;
}

/*
 * A new connection (a bare SYN) on a closed flow's entry: the same client
 * tuple reconnecting keeps its translation (the sandbox's TIME_WAIT accepts
 * it, the same 4-tuple's timestamps being monotonic), and both entries
 * leave the closing timeout. Returns -1 when the partner no longer leads
 * back here (its tuple went to another flow): then the entry is stale.
 */
static __always_inline int ct_reopen(struct berth_ct_val *v, const struct dp_pkt *p, __u64 now)
{
	struct berth_ct_key rk DP_ALIGNED;
	struct berth_ct_val *r;

	ct_reverse(&rk, v->saddr, v->daddr, v->sport, v->dport, p->key.proto);
	r = ct_find(&rk);
	if (!r || !addr_eq(r->saddr, p->key.daddr) || !addr_eq(r->daddr, p->key.saddr) || r->sport != p->key.dport ||
	    r->dport != p->key.sport)
		return -1;
	r->flags &= ~BERTH_CT_CLOSING;
	r->last_seen = now;
	v->flags &= ~BERTH_CT_CLOSING;
	v->last_seen = now;
	return 0;
}

/*
 * Accounts a packet on a live entry; TCP FIN or RST moves it to the closing
 * timeout, a new SYN out of it. Returns -1 for a SYN on a stale entry (the
 * packet is then a new flow's), else 0.
 */
static __always_inline int ct_touch(struct berth_ct_val *v, const struct dp_pkt *p, __u64 now)
{
	if (p->key.proto == IPPROTO_TCP && (v->flags & BERTH_CT_CLOSING) && (p->tcp_flags & 0x17) == 0x02 &&
	    ct_reopen(v, p, now))
		return -1;
	v->packets++;
	v->bytes += p->len;
	if (p->key.proto == IPPROTO_TCP && (p->tcp_flags & 0x05) && !(v->flags & BERTH_CT_CLOSING))
		v->flags |= BERTH_CT_CLOSING;
	if (now - v->last_seen > CT_REFRESH_NS)
		v->last_seen = now;
	return 0;
}

/*
 * Creates the two entries of a flow arriving as @fk and leaving as @nt.
 * @rflags go on the reply entry in addition to @flags. Returns 0, or -1
 * when the reply tuple is taken by a live flow (a masquerade port clash) or
 * the table refused the entries.
 */
static __always_inline int ct_create(const struct berth_ct_key *fk, const struct berth_ct_key *nt, __u16 flags,
				     __u16 rflags, __u32 pub_id, __u64 now)
{
	struct dp_scratch *s = scratch();
	struct berth_ct_val *fv, *rv, *old;
	struct berth_ct_key rk DP_ALIGNED;

	if (!s)
		return -1;
	fv = &s->fv;
	rv = &s->rv;
	__builtin_memset(fv, 0, sizeof(*fv));
	__builtin_memset(rv, 0, sizeof(*rv));

	ct_reverse(&rk, nt->saddr, nt->daddr, nt->sport, nt->dport, nt->proto);
	old = ct_find(&rk);
	if (old && now - old->last_seen <= ct_timeout(rk.proto, old->flags)) {
		/* The same flow again (a retransmitted SYN, the forward entry evicted): keep it. */
		if (!(addr_eq(old->daddr, fk->saddr) && old->dport == fk->sport && addr_eq(old->saddr, fk->daddr) &&
		      old->sport == fk->dport))
			return -1;
	}
	addr_cpy(fv->saddr, nt->saddr);
	addr_cpy(fv->daddr, nt->daddr);
	fv->sport = nt->sport;
	fv->dport = nt->dport;
	fv->flags = flags | BERTH_CT_NEW;
	fv->last_seen = fv->created = now;
	fv->pub_id = pub_id;

	addr_cpy(rv->saddr, fk->daddr);
	addr_cpy(rv->daddr, fk->saddr);
	rv->sport = fk->dport;
	rv->dport = fk->sport;
	rv->flags = flags | rflags | BERTH_CT_REPLY | BERTH_CT_NEW;
	rv->last_seen = rv->created = now;
	rv->pub_id = pub_id;

	if (bpf_map_update_elem(&berth_dp_ct_new, &rk, rv, BPF_ANY) ||
	    bpf_map_update_elem(&berth_dp_ct_new, fk, fv, BPF_ANY)) {
		stat_inc(BERTH_STAT_CT_INSERT_FAIL);
		return -1;
	}
	/* Expired entries of the tuples in the established table would shadow the new ones. */
	bpf_map_delete_elem(&berth_dp_ct, &rk);
	bpf_map_delete_elem(&berth_dp_ct, fk);
	stat_inc(BERTH_STAT_CT_CREATED);
	return 0;
}

/* The live entry holding the reply tuple of a flow leaving as @nt (NULL: the tuple is free). */
static __always_inline struct berth_ct_val *ct_reply_holder(const struct berth_ct_key *nt, __u64 now)
{
	struct berth_ct_key rk DP_ALIGNED;

	ct_reverse(&rk, nt->saddr, nt->daddr, nt->sport, nt->dport, nt->proto);
	return ct_lookup(&rk, now);
}

/*
 * Frees the reply tuple of a flow leaving as @nt, held by a closed flow: its
 * reply entry and the forward entry it leads back to (whose client tuple
 * would otherwise reconnect onto the new flow's sandbox-side tuple).
 */
static __always_inline void ct_reclaim(const struct berth_ct_key *nt)
{
	struct berth_ct_key rk DP_ALIGNED;
	struct berth_ct_key fk DP_ALIGNED;
	struct berth_ct_val *r, *f;

	ct_reverse(&rk, nt->saddr, nt->daddr, nt->sport, nt->dport, nt->proto);
	r = ct_find(&rk);
	if (!r)
		return;
	ct_reverse(&fk, r->saddr, r->daddr, r->sport, r->dport, nt->proto);
	f = ct_find(&fk);
	if (f && addr_eq(f->saddr, rk.daddr) && addr_eq(f->daddr, rk.saddr) && f->sport == rk.dport && f->dport == rk.sport)
		ct_delete(&fk);
	ct_delete(&rk);
}

/*
 * Moves an unconfirmed flow to the established table: the entry @v of @k
 * and its partner, if the partner still leads back to @k.
 */
static __always_inline void ct_confirm(const struct berth_ct_key *k, struct berth_ct_val *v)
{
	struct berth_ct_key pk DP_ALIGNED;
	struct berth_ct_val *pv;

	ct_reverse(&pk, v->saddr, v->daddr, v->sport, v->dport, k->proto);
	pv = bpf_map_lookup_elem(&berth_dp_ct_new, &pk);
	if (!pv || !addr_eq(pv->saddr, k->daddr) || !addr_eq(pv->daddr, k->saddr) || pv->sport != k->dport ||
	    pv->dport != k->sport)
		return;
	v->flags &= ~BERTH_CT_NEW;
	pv->flags &= ~BERTH_CT_NEW;
	if (bpf_map_update_elem(&berth_dp_ct, &pk, pv, BPF_ANY) || bpf_map_update_elem(&berth_dp_ct, k, v, BPF_ANY)) {
		stat_inc(BERTH_STAT_CT_INSERT_FAIL);
		return;
	}
	bpf_map_delete_elem(&berth_dp_ct_new, &pk);
	bpf_map_delete_elem(&berth_dp_ct_new, k);
	stat_inc(BERTH_STAT_CT_CONFIRMED);
}

/*
 * A packet of an unconfirmed flow, after it was translated (@v may move).
 * The client shows it receives the replies (it is no spoofed source) by
 * answering one: for TCP an ACK of the SYN-ACK's sequence, for the others
 * any packet after a reply. A TCP flow's far side sending neither SYN nor
 * RST (the server speaking first, a flow picked up mid-stream) confirms it
 * too: a spoofed client's flow never gets that far.
 */
static __always_inline void ct_progress(const struct berth_ct_key *k, const struct dp_pkt *p, struct berth_ct_val *v)
{
	struct berth_ct_key pk DP_ALIGNED;
	struct berth_ct_val *pv;
	int tcp = k->proto == IPPROTO_TCP;

	if (v->flags & BERTH_CT_REPLY) {
		if (!tcp)
			v->ack = 1;
		else if ((p->tcp_flags & 0x12) == 0x12)
			v->ack = p->tcp_seq + 1;
		else if (!(p->tcp_flags & 0x06))
			ct_confirm(k, v);
		return;
	}
	ct_reverse(&pk, v->saddr, v->daddr, v->sport, v->dport, k->proto);
	pv = bpf_map_lookup_elem(&berth_dp_ct_new, &pk);
	if (!pv || !pv->ack)
		return;
	if (tcp && ((p->tcp_flags & 0x16) != 0x10 || pv->ack != p->tcp_ack))
		return;
	ct_confirm(k, v);
}

/* ---- packets of known flows ---- */

/* Defined by dp_nat.h and dp_icmp.h, which need the table above; programs include both. */
static __always_inline int dp_rewrite(struct __sk_buff *skb, struct dp_pkt *p, const __u8 *saddr, const __u8 *daddr,
				      __u16 sport, __u16 dport);
static __always_inline int icmp_error(struct dp_ctx *c);

/* A packet of a known flow: translate as its entry says and deliver. */
static __always_inline int ct_forward(struct dp_ctx *c, struct berth_ct_val *v)
{
	const struct berth_dp_ep *ep;
	__u16 flags = v->flags;

	c->rule = BERTH_RULE_FLOW;
	if (!c->explain) {
		if (ct_touch(v, &c->p, c->now))
			return BERTH_DELIVERY_NONE; /* a stale entry: the packet starts a new flow */
		if (v->pub_id)
			traffic(BERTH_TRAFFIC_PUB, v->pub_id, c->p.len);
	}
	if (flags & (BERTH_CT_SNAT | BERTH_CT_DNAT)) {
		struct berth_ct_key k DP_ALIGNED = c->p.key;

		if (dp_rewrite(c->skb, &c->p, v->saddr, v->daddr, v->sport, v->dport))
			return -BERTH_DROP_MALFORMED;
		/* last: a confirmed flow's entries move, and @v is then no longer ours */
		if ((flags & BERTH_CT_NEW) && !c->explain)
			ct_progress(&k, &c->p, v);
		return deliver(c, flags);
	}
	if ((flags & BERTH_CT_NEW) && !c->explain)
		ct_progress(&c->p.key, &c->p, v);
	/* Untranslated (a link's flow): straight to the peer on the same network. */
	ep = bpf_map_lookup_elem(&berth_dp_ep_ip, c->p.key.daddr);
	if (ep)
		return to_endpoint(c, ep, 1);
	return to_stack(c, BERTH_RULE_FLOW);
}

/*
 * A packet of a flow the datapath knows (translated and delivered), or an
 * ICMP error about one; BERTH_DELIVERY_NONE when neither: the caller decides
 * as for a new flow.
 */
static __always_inline int known_flow(struct dp_ctx *c)
{
	struct berth_ct_val *v = ct_lookup_pkt(&c->p, c->now);

	if (v)
		return ct_forward(c, v);
	if (c->p.icmp_err)
		return icmp_error(c);
	return BERTH_DELIVERY_NONE;
}

#endif /* BERTH_LIB_DP_CT_H */
