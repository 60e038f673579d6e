/* SPDX-License-Identifier: Apache-2.0 */
/* Header parsing over [data, data_end), shared by TC and XDP entry points. */
#ifndef BERTH_LIB_PARSE_H
#define BERTH_LIB_PARSE_H

#include "common.h"

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

#endif /* BERTH_LIB_PARSE_H */
