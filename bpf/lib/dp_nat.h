/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NAT, all of it: the translations of new flows (DNAT to a published port,
 * masquerade outbound, the source port choice both need) and rewriting a
 * packet's addresses and ports with correct checksums: the IPv4 header
 * checksum, the L4 checksum with its pseudo-header (TCP, UDP, ICMPv6), ICMP
 * echo ids, and SCTP's CRC32c over the whole packet. The csum helpers keep
 * CHECKSUM_PARTIAL (GSO) packets right: they adjust the pseudo-header seed
 * the hardware or the stack completes later. Packets of known flows are
 * rewritten from their connection entry (dp_ct.h); ICMP errors in dp_icmp.h.
 */
#ifndef BERTH_LIB_DP_NAT_H
#define BERTH_LIB_DP_NAT_H

#include "dp_pkt.h"
#include "dp_crc32c_table.h"
#include "dp_ct.h"
#include "dp_events.h"
#include "dp_publish.h"

#define DP_IP4_SRC (ETH_HLEN + 12)
#define DP_IP4_DST (ETH_HLEN + 16)
#define DP_IP4_CSUM (ETH_HLEN + 10)
#define DP_IP6_SRC (ETH_HLEN + 8)
#define DP_IP6_DST (ETH_HLEN + 24)
#define DP_SCTP_MAX_BYTES 2048

/* Offset of the L4 checksum, or 0 when the protocol has none the csum helpers can fix. */
static __always_inline __u32 l4_csum_off(const struct dp_pkt *p)
{
	switch (p->key.proto) {
	case IPPROTO_TCP:
		return p->l4off + 16;
	case IPPROTO_UDP:
		return p->l4off + 6;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return p->l4off + 2;
	}
	return 0;
}

/* Flags for bpf_l4_csum_replace: UDP over IPv4 may carry no checksum (0), which must stay 0. */
static __always_inline __u64 l4_csum_flags(const struct dp_pkt *p)
{
	return p->key.proto == IPPROTO_UDP && p->family == 4 ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Replaces one address (@dst: the destination) by @to. */
static __always_inline int rewrite_addr(struct __sk_buff *skb, const struct dp_pkt *p, int dst, const __u8 *to)
{
	const __u8 *from = dst ? p->key.daddr : p->key.saddr;
	__u32 csum = l4_csum_off(p);
	__u64 fl = l4_csum_flags(p);

	if (addr_eq(from, to))
		return 0;
	if (p->family == 4) {
		__u32 o = *(const __u32 *)(from + 12), n = *(const __u32 *)(to + 12);

		/* ICMPv4 has no pseudo-header; TCP and UDP do. Fragments carry no L4 header. */
		if (csum && p->key.proto != IPPROTO_ICMP && !p->frag &&
		    bpf_l4_csum_replace(skb, csum, o, n, BPF_F_PSEUDO_HDR | fl | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, DP_IP4_CSUM, o, n, 4))
			return -1;
		return bpf_skb_store_bytes(skb, dst ? DP_IP4_DST : DP_IP4_SRC, &n, 4, 0);
	}
	if (csum && !p->frag) {
		__s64 diff = bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);

		if (bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR | fl))
			return -1;
	}
	return bpf_skb_store_bytes(skb, dst ? DP_IP6_DST : DP_IP6_SRC, to, 16, 0);
}

/* Replaces a 16-bit field at @off (a port or an ICMP id) covered by the L4 checksum. */
static __always_inline int rewrite_l4_u16(struct __sk_buff *skb, const struct dp_pkt *p, __u32 off, __u16 from, __u16 to)
{
	__u32 csum = l4_csum_off(p);

	if (from == to)
		return 0;
	if (csum && bpf_l4_csum_replace(skb, csum, from, to, l4_csum_flags(p) | 2))
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 2, 0);
}

/*
 * SCTP's checksum: CRC32c of the whole SCTP packet with the checksum field
 * zero, stored little-endian. A global function, verified once.
 */
static __always_inline int sctp_crc_body(struct __sk_buff *skb, __u32 l4off)
{
	__u32 zero = 0, crc = 0xffffffff, len = skb->len, off, i;
	__u8 buf[4];

	if (l4off > 256 || len > l4off + DP_SCTP_MAX_BYTES)
		return -1;
	if (bpf_skb_store_bytes(skb, l4off + 8, &zero, 4, 0))
		return -1;
	off = l4off;
	for (i = 0; i < DP_SCTP_MAX_BYTES / 4; i++) {
		if (off + 4 > len)
			break;
		if (bpf_skb_load_bytes(skb, off, buf, 4))
			return -1;
		crc = crc32c_table[(crc ^ buf[0]) & 0xff] ^ (crc >> 8);
		crc = crc32c_table[(crc ^ buf[1]) & 0xff] ^ (crc >> 8);
		crc = crc32c_table[(crc ^ buf[2]) & 0xff] ^ (crc >> 8);
		crc = crc32c_table[(crc ^ buf[3]) & 0xff] ^ (crc >> 8);
		off += 4;
	}
	/* SCTP packets are padded to four bytes; a tail is malformed but still checksummed. */
	for (i = 0; i < 3; i++) {
		if (off >= len)
			break;
		if (bpf_skb_load_bytes(skb, off, buf, 1))
			return -1;
		crc = crc32c_table[(crc ^ buf[0]) & 0xff] ^ (crc >> 8);
		off++;
	}
	crc = ~crc;
	return bpf_skb_store_bytes(skb, l4off + 8, &crc, 4, 0);
}

/* SCTP's checksum: CRC32c of the whole SCTP packet with the checksum field zero, stored little-endian. Verified once. */
__noinline int berth_sctp_fix_crc(struct __sk_buff *skb, __u32 l4off)
{
	if (!skb)
		return -1;
	return sctp_crc_body(skb, l4off);
}

/*
 * Rewrites the packet from the tuple in p->key to (saddr, daddr, sport,
 * dport) and makes p->key the new tuple. Returns 0 or -1 (a helper failed:
 * the packet is left half-rewritten and must be dropped).
 */
static __always_inline int dp_rewrite(struct __sk_buff *skb, struct dp_pkt *p, const __u8 *saddr, const __u8 *daddr,
				      __u16 sport, __u16 dport)
{
	int ports_changed = 0;

	if (rewrite_addr(skb, p, 0, saddr) || rewrite_addr(skb, p, 1, daddr))
		return -1;
	if (!p->frag) {
		if (p->key.proto == IPPROTO_TCP || p->key.proto == IPPROTO_UDP || p->key.proto == DP_IPPROTO_SCTP) {
			ports_changed = p->key.sport != sport || p->key.dport != dport;
			if (p->key.proto == DP_IPPROTO_SCTP) {
				if (p->key.sport != sport && bpf_skb_store_bytes(skb, p->l4off, &sport, 2, 0))
					return -1;
				if (p->key.dport != dport && bpf_skb_store_bytes(skb, p->l4off + 2, &dport, 2, 0))
					return -1;
				if (ports_changed && berth_sctp_fix_crc(skb, p->l4off))
					return -1;
			} else {
				if (rewrite_l4_u16(skb, p, p->l4off, p->key.sport, sport) ||
				    rewrite_l4_u16(skb, p, p->l4off + 2, p->key.dport, dport))
					return -1;
			}
		} else if (p->icmp_echo == 1) {
			if (rewrite_l4_u16(skb, p, p->l4off + 4, p->key.sport, sport))
				return -1;
		} else if (p->icmp_echo == 2) {
			if (rewrite_l4_u16(skb, p, p->l4off + 4, p->key.dport, dport))
				return -1;
		}
	}
	addr_cpy(p->key.saddr, saddr);
	addr_cpy(p->key.daddr, daddr);
	p->key.sport = sport;
	p->key.dport = dport;
	return 0;
}

/*
 * Lowers the MSS option of the TCP SYN whose header is at @l4off to @mss. A
 * connection from the host's loopback (MTU 64 KiB) into a sandbox (its
 * bridge's MTU) would otherwise send segments the veth cannot take. A global
 * function: the verifier checks the option walk once.
 */
__noinline int berth_clamp_mss(struct __sk_buff *skb, __u32 l4off, __u32 mss)
{
	__u8 doff, opt[4];
	__u32 off, end, i;

	if (!skb || l4off > 512)
		return 0;
	if (bpf_skb_load_bytes(skb, l4off + 12, &doff, 1))
		return 0;
	end = l4off + (doff >> 4) * 4;
	off = l4off + 20;
	for (i = 0; i < 10; i++) {
		if (off + 4 > end || off > 1024 || bpf_skb_load_bytes(skb, off, opt, 4))
			return 0;
		if (opt[0] == 0)
			return 0;
		if (opt[0] == 1) {
			off++;
			continue;
		}
		if (opt[0] == 2 && opt[1] == 4) {
			__u16 old = (__u16)opt[2] << 8 | opt[3];

			if (old > mss) {
				__u16 o = bpf_htons(old), n = bpf_htons(mss);

				if (bpf_l4_csum_replace(skb, l4off + 16, o, n, 2))
					return -1;
				return bpf_skb_store_bytes(skb, off + 2, &n, 2, 0);
			}
			return 0;
		}
		if (opt[1] < 2)
			return 0;
		off += opt[1];
	}
	return 0;
}

static __always_inline void clamp_mss(struct __sk_buff *skb, const struct dp_pkt *p, __u16 mss)
{
	if (p->key.proto != IPPROTO_TCP || !(p->tcp_flags & 0x02) || p->frag)
		return;
	berth_clamp_mss(skb, p->l4off, mss);
}

/* ---- the translations of new flows: port choice, DNAT, masquerade ---- */

/*
 * A source port (or ICMP id) for a translated flow whose reply tuple is
 * free: the packet's own, else random ones from @lo + [0, @span). Returns 1,
 * or 0 when none was found. With @reclaim, failing that, the tuple of the
 * longest-closed TCP flow met is taken (returns 2; the caller frees it): a
 * sandbox that still holds it in TIME_WAIT may answer the SYN with the old
 * connection's ACK, which the client resets and retries at once, where a
 * drop would cost it a second.
 */
static __always_inline int pick_sport(struct dp_ctx *c, struct berth_ct_key *nt, __u32 lo, __u32 span, int reclaim)
{
	struct berth_ct_val *v;
	__u64 oldest = 0;
	__u16 best = 0;
	int i;

	for (i = 0; i < 9; i++) {
		if (i) {
			stat_inc(BERTH_STAT_NAT_RETRY);
			nt->sport = bpf_htons(lo + bpf_get_prandom_u32() % span);
		}
		v = ct_reply_holder(nt, c->now);
		if (!v)
			return 1;
		if (reclaim && (v->flags & BERTH_CT_CLOSING) && c->now - v->last_seen >= oldest) {
			oldest = c->now - v->last_seen;
			best = nt->sport;
		}
	}
	if (!best)
		return 0;
	nt->sport = best;
	return 2;
}

/*
 * A new connection to a published port: the operator's policy and the allow-list, then DNAT to the
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
	int r;

	c->rule = BERTH_RULE_PUBLISH;
	tep = bpf_map_lookup_elem(&berth_dp_ep_ip, e->target);
	if (!tep)
		return allow_ok(c, e) ? to_stack(c, BERTH_RULE_PUBLISH) : -BERTH_DROP_ALLOWLIST;
	tnet = bpf_map_lookup_elem(&berth_dp_nets, &tep->net);
	if (!tnet)
		return -BERTH_DROP_NO_CONFIG;
	/* The operator's policy first, then the publish's own allow-list. */
	if ((tnet->flags & BERTH_NET_PUBPOL) &&
	    !berth_pubpol_ok(tnet->bridge, c->hook == BERTH_HOOK_HOST, (const struct berth_dp_addr *)c->p.key.saddr))
		return -BERTH_DROP_PUBLISH_POLICY;
	if (!allow_ok(c, e))
		return -BERTH_DROP_ALLOWLIST;
	addr_cpy(nt.daddr, e->target);
	nt.dport = bpf_htons(e->cport + (port - e->start));
	if (addr_eq(c->p.key.saddr, e->target) || addr_loopback(c->p.key.saddr)) {
		addr_cpy(nt.saddr, c->p.family == 4 ? tnet->gw4 : tnet->gw6);
		flags |= BERTH_CT_SNAT;
	}
	/* Any unprivileged port will do as the client's: one client has few sandbox-side tuples (64k) against TIME_WAIT. */
	r = pick_sport(c, &nt, 1024, 65536 - 1024, 1);
	if (!r)
		return -BERTH_DROP_NAT_EXHAUSTED;
	if (r == 2 && !c->explain)
		ct_reclaim(&nt);
	if (nt.sport != c->p.key.sport)
		flags |= BERTH_CT_SNAT;
	if (!c->explain && ct_create(&c->p.key, &nt, flags, c->hook == BERTH_HOOK_HOST ? BERTH_CT_TO_HOST : 0, (__u32)e->proto << 16 | e->start, c->now))
		return -BERTH_DROP_CT_FULL;
	if (!c->explain)
		traffic(BERTH_TRAFFIC_PUB, (__u32)e->proto << 16 | e->start, c->p.len);
	emit_event(c, BERTH_EVENT_FLOW, 0, &nt);
	if (dp_rewrite(c->skb, &c->p, nt.saddr, nt.daddr, nt.sport, nt.dport))
		return -BERTH_DROP_MALFORMED;
	if (c->hook == BERTH_HOOK_HOST && tnet->mtu > 100)
		clamp_mss(c->skb, &c->p, tnet->mtu - (c->p.family == 4 ? 40 : 60));
	return to_endpoint(c, tep, 0);
}

/* Outbound to the outside world: masquerade to the address of the device the route leaves by. */
static __always_inline int masquerade(struct dp_ctx *c)
{
	struct berth_ct_key nt DP_ALIGNED = c->p.key;
	struct bpf_fib_lookup *f;
	const struct berth_dp_addr *a;
	__u32 oif;
	__u64 k;
	int r;

	c->rule = BERTH_RULE_MASQ;
	if (c->p.frag)
		return -BERTH_DROP_FRAGMENT;
	if ((c->p.key.proto == IPPROTO_ICMP || c->p.key.proto == IPPROTO_ICMPV6) && !c->p.icmp_echo)
		return to_stack(c, BERTH_RULE_ROUTE);
	f = fib_params(c);
	if (!f)
		return to_stack(c, BERTH_RULE_ROUTE);
	r = bpf_fib_lookup(c->skb, f, sizeof(*f), 0);
	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH)
		return to_stack(c, BERTH_RULE_ROUTE);
	oif = f->ifindex;
	k = (__u64)oif << 1 | (c->p.family == 6);
	a = bpf_map_lookup_elem(&berth_dp_ifaddr, &k);
	if (!a)
		return to_stack(c, BERTH_RULE_ROUTE);
	addr_cpy(nt.saddr, a->a);
	if (!pick_sport(c, &nt, 32768, 28232, 0))
		return -BERTH_DROP_NAT_EXHAUSTED;
	if (!c->explain && ct_create(&c->p.key, &nt, BERTH_CT_SNAT | BERTH_CT_MASQ, 0, 0, c->now))
		return -BERTH_DROP_CT_FULL;
	emit_event(c, BERTH_EVENT_FLOW, 0, &nt);
	if (dp_rewrite(c->skb, &c->p, nt.saddr, nt.daddr, nt.sport, nt.dport))
		return -BERTH_DROP_MALFORMED;
	/* The route was looked up for the untranslated packet; the next hop it found still holds. */
	c->oif = oif;
	if (r == BPF_FIB_LKUP_RET_SUCCESS) {
		if (set_macs(c->skb, f->smac, f->dmac))
			return -BERTH_DROP_MALFORMED;
		return BERTH_DELIVERY_FIB;
	}
	c->neigh = 1;
	return BERTH_DELIVERY_FIB;
}

#endif /* BERTH_LIB_DP_NAT_H */
