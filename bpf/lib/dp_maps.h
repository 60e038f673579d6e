/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath's maps, declared once and shared by the three programs
 * (tc_container.c, tc_uplink.c, tc_host.c): each object pins them by name
 * under berthd's bpffs directory, and the second and third object reuse the
 * first one's pins, so all programs see one state. User space writes every
 * map except berth_dp_ct, berth_dp_ct_new, berth_dp_drops, berth_dp_stats and the events.
 */
#ifndef BERTH_LIB_DP_MAPS_H
#define BERTH_LIB_DP_MAPS_H

#include "common.h"

#ifndef BERTH_CT_MAX
#define BERTH_CT_MAX 262144
#endif
/* flows that have not completed a handshake (dp_ct.h): a flood of them cannot evict established ones */
#define BERTH_CT_NEW_MAX 65536
#define BERTH_EP_MAX 65536
/* Stack copies of ABI structs whose addresses are read 8 bytes at a time. */
#define DP_ALIGNED __attribute__((aligned(8)))
#define BERTH_NET_MAX 4096
#define BERTH_LINK_MAX 65536
#define BERTH_ALLOW_MAX 65536

#define DP_MAP(_name, _type, _key, _val, _max)			\
	struct {						\
		__uint(type, _type);				\
		__uint(max_entries, _max);			\
		__type(key, _key);				\
		__type(value, _val);				\
		__uint(pinning, LIBBPF_PIN_BY_NAME);		\
	} _name SEC(".maps")

/* bridge ifindex -> network */
DP_MAP(berth_dp_nets, BPF_MAP_TYPE_HASH, __u32, struct berth_dp_net, BERTH_NET_MAX);
/* sandbox address -> endpoint */
DP_MAP(berth_dp_ep_ip, BPF_MAP_TYPE_HASH, struct berth_dp_addr, struct berth_dp_ep, BERTH_EP_MAX);
/* host-side veth ifindex -> endpoint */
DP_MAP(berth_dp_ep_if, BPF_MAP_TYPE_HASH, __u32, struct berth_dp_ep, BERTH_EP_MAX);
/* link (client, target, port, proto) -> 1 */
DP_MAP(berth_dp_links, BPF_MAP_TYPE_HASH, struct berth_dp_link_key, __u32, BERTH_LINK_MAX);
/* the published ports, two generations (see struct berth_dp_pub) */
DP_MAP(berth_dp_pub, BPF_MAP_TYPE_ARRAY, __u32, struct berth_dp_pub, 2 * BERTH_PUB_MAX);
/* index 0: (generation << 31) | entries of the live generation */
DP_MAP(berth_dp_pubsel, BPF_MAP_TYPE_ARRAY, __u32, __u32, 1);
/* index 0: host-wide settings */
DP_MAP(berth_dp_cfg, BPF_MAP_TYPE_ARRAY, __u32, struct berth_dp_cfg, 1);
/* ifindex of a non-berth interface -> its IPv4 (index 0) and IPv6 (index 1) masquerade addresses */
DP_MAP(berth_dp_ifaddr, BPF_MAP_TYPE_HASH, __u64, struct berth_dp_addr, 1024);
/* connection tracking and NAT; LRU: under pressure the least recently used go first */
DP_MAP(berth_dp_ct, BPF_MAP_TYPE_LRU_HASH, struct berth_ct_key, struct berth_ct_val, BERTH_CT_MAX);
/* unconfirmed flows, entries as in berth_dp_ct: a flow moves there once its client answers a reply */
DP_MAP(berth_dp_ct_new, BPF_MAP_TYPE_LRU_HASH, struct berth_ct_key, struct berth_ct_val, BERTH_CT_NEW_MAX);
/* drop reason -> packets and bytes */
DP_MAP(berth_dp_drops, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, struct berth_counter, BERTH_DROP__MAX);
/* (enum berth_traffic_kind << 32) | id -> packets and bytes, per CPU */
DP_MAP(berth_dp_traffic, BPF_MAP_TYPE_PERCPU_HASH, __u64, struct berth_counter, BERTH_NET_MAX * 2 + BERTH_PUB_MAX);
/* enum berth_dp_stat -> count */
DP_MAP(berth_dp_stats, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, BERTH_STAT__MAX);

/* every berth subnet -> its bridge ifindex */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BERTH_NET_MAX * 2);
	__type(key, struct berth_dp_lpm_id);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_subnets SEC(".maps");

/* (publish id, source prefix) -> 1: the allow-lists */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BERTH_ALLOW_MAX);
	__type(key, struct berth_dp_lpm_id);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_allow SEC(".maps");

/* (bridge ifindex, source prefix) -> 1: the operator's publish policy of networks flagged BERTH_NET_PUBPOL */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BERTH_ALLOW_MAX);
	__type(key, struct berth_dp_lpm_id);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_pubpol SEC(".maps");

/* (endpoint ifindex, destination prefix) -> the ports admitted: egress allow-lists */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BERTH_ALLOW_MAX);
	__type(key, struct berth_dp_lpm_id);
	__type(value, struct berth_dp_egress);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_egress SEC(".maps");

/* Per-CPU scratch space for what does not fit the 512-byte BPF stack. */
struct dp_scratch {
	struct berth_ct_val fv;
	struct berth_ct_val rv;
	struct bpf_fib_lookup fib;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_scratch);
} berth_dp_scratch SEC(".maps");

static __always_inline struct dp_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&berth_dp_scratch, &zero);
}

/* drops and new connections for `berth monitor` */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_events SEC(".maps");

/* per CPU: [0] the current second, [1] events sent in it */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_dp_evrate SEC(".maps");

#endif /* BERTH_LIB_DP_MAPS_H */
