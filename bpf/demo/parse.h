/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The demo's header parsing over [data, data_end), for its TC and XDP entry
 * points alike. It reads only what the counters and events need; the
 * datapath's own parser is bpf/lib/dp_pkt.h.
 */
#ifndef BERTH_DEMO_PARSE_H
#define BERTH_DEMO_PARSE_H

#include "lib/common.h"
#include "count_abi.h"

/* Verdict-neutral result of a parse: what the counters and events need. */
struct berth_pkt_info {
	__u16 eth_proto;	/* host byte order */
	__u8 l4proto;
	__u32 saddr4;
	__u32 daddr4;
};

/*
 * Fills @info from the Ethernet, IPv4 or IPv6 headers. Returns 0, or
 * -BERTH_DROP_MALFORMED when a header is cut short: the caller decides
 * whether that is a drop.
 */
static __always_inline int parse_l2l3(void *data, void *data_end,
				      struct berth_pkt_info *info)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -BERTH_DROP_MALFORMED;
	info->eth_proto = bpf_ntohs(eth->h_proto);

	if (info->eth_proto == ETH_P_IP) {
		struct iphdr *ip4 = (void *)(eth + 1);

		if ((void *)(ip4 + 1) > data_end || ip4->ihl < 5)
			return -BERTH_DROP_MALFORMED;
		info->l4proto = ip4->protocol;
		info->saddr4 = ip4->saddr;
		info->daddr4 = ip4->daddr;
	} else if (info->eth_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -BERTH_DROP_MALFORMED;
		/* Extension headers are walked by the datapath proper, not here. */
		info->l4proto = ip6->nexthdr;
	}
	return 0;
}

#endif /* BERTH_DEMO_PARSE_H */
