/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel's own drops of berth's traffic: a tp_btf program on the
 * kfree_skb tracepoint counts, by the kernel's drop reason, the packets freed
 * as dropped on berth's interfaces (sandbox veths and bridges, as the
 * datapath's maps list them) in berthd's network namespace. Everything else
 * is left alone. The kernel structs are declared with only the fields read,
 * relocated by libbpf against the running kernel's BTF (CO-RE).
 */
#include "lib/dp_maps.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* The network namespace (inode number) berthd runs in; set at load. */
const volatile __u32 cfg_netns_inum = 0;

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct net_device {
	int ifindex;
	struct {
		struct net *net;
	} nd_net;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	unsigned int len;
} __attribute__((preserve_access_index));

#define KDROP_REASONS 256

/* kernel drop reason (enum skb_drop_reason) -> packets and bytes, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KDROP_REASONS);
	__type(key, __u32);
	__type(value, struct berth_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_kdrops SEC(".maps");

SEC("tp_btf/kfree_skb")
int BPF_PROG(berth_kfree_skb, struct sk_buff *skb, void *location, int reason)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct berth_counter *c;
	__u32 ifindex, r = reason;

	/* 0 and 1: not a drop (SKB_NOT_DROPPED_YET, SKB_CONSUMED). */
	if (!dev || r < 2 || r >= KDROP_REASONS)
		return 0;
	if (BPF_CORE_READ(dev, nd_net.net, ns.inum) != cfg_netns_inum)
		return 0;
	ifindex = BPF_CORE_READ(dev, ifindex);
	if (!bpf_map_lookup_elem(&berth_dp_ep_if, &ifindex) && !bpf_map_lookup_elem(&berth_dp_nets, &ifindex))
		return 0;
	c = bpf_map_lookup_elem(&berth_dp_kdrops, &r);
	if (c) {
		c->packets++;
		c->bytes += BPF_CORE_READ(skb, len);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
