/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The structs bpf/demo/count.c shares with user space (the `berth demo`
 * command, test/bpf/count.test.ts). The demo is no part of the datapath, so
 * its ABI is kept out of berth_abi.h; it reuses berth_abi.h's counter and
 * drop reasons only. src/bpf/abi.ts mirrors these too, and
 * test/unit/abi.test.ts checks their sizes like the datapath's.
 */
#ifndef BERTH_COUNT_ABI_H
#define BERTH_COUNT_ABI_H

#include "berth_abi.h"

/* Where the counting program runs; part of its counter keys and events. */
enum berth_count_hook {
	BERTH_COUNT_TC_INGRESS = 0,
	BERTH_COUNT_TC_EGRESS = 1,
	BERTH_COUNT_XDP = 2,
};

/* Packet counter key: one slot per interface and hook. */
struct berth_ifcount_key {
	__u32 ifindex;
	__u8 hook;		/* enum berth_count_hook */
	__u8 pad[3];
};

/* A sampled packet, sent through the event ring buffer. */
struct berth_pkt_event {
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u32 ifindex;
	__u32 len;		/* skb->len or XDP frame length */
	__u16 eth_proto;	/* host byte order */
	__u8 hook;		/* enum berth_count_hook */
	__u8 l4proto;		/* IPPROTO_*, 0 when not IP */
	__u8 drop_reason;	/* enum berth_drop_reason */
	__u8 pad[3];
	__u32 saddr4;		/* network byte order, IPv4 only */
	__u32 daddr4;
};

#endif /* BERTH_COUNT_ABI_H */
