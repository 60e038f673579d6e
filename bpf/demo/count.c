/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The demo (`berth demo`, test/bpf/count.test.ts), no part of the datapath:
 * counts packets and bytes per interface and hook, samples packets into a
 * ring buffer, and can drop one L4 protocol (a knob used to prove verdicts
 * and rodata settings end to end). Attached at tc ingress, tc egress or XDP;
 * the same logic serves all three.
 */
#include "lib/common.h"
#include "count_abi.h"
#include "parse.h"
#include "maps.h"

/* Knobs, set by user space between open and load. */
const volatile __u8 cfg_drop_l4proto = 0;	/* IPPROTO_* to drop; 0: none */
const volatile __u32 cfg_event_sample = 0;	/* emit 1 in N packets; 0: none */

static __always_inline void __count(struct berth_ifcount_key *key, __u32 len)
{
	struct berth_counter *c = bpf_map_lookup_elem(&berth_counts, key);

	if (!c) {
		struct berth_counter init = {};

		/* BPF_NOEXIST: another CPU may have created it meanwhile; either way retry once. */
		bpf_map_update_elem(&berth_counts, key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&berth_counts, key);
		if (!c)
			return;
	}
	c->packets++;
	c->bytes += len;
}

static __always_inline void __count_drop(__u32 reason, __u32 len)
{
	struct berth_counter *c = bpf_map_lookup_elem(&berth_drops, &reason);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

static __always_inline void __emit(const struct berth_ifcount_key *key, __u32 len,
				   const struct berth_pkt_info *info, __u8 reason)
{
	struct berth_pkt_event *ev;
	__u32 zero = 0;

	if (!cfg_event_sample || bpf_get_prandom_u32() % cfg_event_sample)
		return;
	ev = bpf_ringbuf_reserve(&berth_events, sizeof(*ev), 0);
	if (!ev) {
		__u64 *lost = bpf_map_lookup_elem(&berth_events_lost, &zero);

		if (lost)
			(*lost)++;
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->ifindex = key->ifindex;
	ev->len = len;
	ev->hook = key->hook;
	ev->eth_proto = info->eth_proto;
	ev->l4proto = info->l4proto;
	ev->drop_reason = reason;
	ev->saddr4 = info->saddr4;
	ev->daddr4 = info->daddr4;
	bpf_ringbuf_submit(ev, 0);
}

/* Returns 0 to pass or a positive enum berth_drop_reason. */
static __always_inline __u32 observe(void *data, void *data_end, __u32 ifindex,
				     __u8 hook, __u32 len)
{
	struct berth_ifcount_key key = { .ifindex = ifindex, .hook = hook };
	struct berth_pkt_info info = {};
	__u32 reason = BERTH_DROP_NONE;
	int ret;

	__count(&key, len);
	ret = parse_l2l3(data, data_end, &info);
	if (ret < 0)
		reason = -ret;
	else if (cfg_drop_l4proto && info.l4proto == cfg_drop_l4proto)
		reason = BERTH_DROP_PROTO_FILTER;

	if (reason)
		__count_drop(reason, len);
	__emit(&key, len, &info, reason);
	return reason;
}

SEC("tc")
int berth_count_tc_ingress(struct __sk_buff *skb)
{
	if (observe((void *)(long)skb->data, (void *)(long)skb->data_end,
		    skb->ifindex, BERTH_COUNT_TC_INGRESS, skb->len))
		return TC_ACT_SHOT;
	/* TC_ACT_UNSPEC lets the next program of a tcx chain (or the stack) decide. */
	return TC_ACT_UNSPEC;
}

SEC("tc")
int berth_count_tc_egress(struct __sk_buff *skb)
{
	if (observe((void *)(long)skb->data, (void *)(long)skb->data_end,
		    skb->ifindex, BERTH_COUNT_TC_EGRESS, skb->len))
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int berth_count_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (observe(data, data_end, ctx->ingress_ifindex, BERTH_COUNT_XDP,
		    (__u32)(data_end - data)))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
