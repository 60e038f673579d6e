/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every struct and constant shared by the BPF programs and user space.
 *
 * src/bpf/abi.ts mirrors this file field by field; test/unit/abi.test.ts checks
 * the sizes against both the addon (compiled from this header) and the BTF of
 * the loaded maps, so a change here that is not made there fails the suite.
 * Fields are laid out without implicit padding: explicit pad fields only.
 */
#ifndef BERTH_ABI_H
#define BERTH_ABI_H

#include <linux/types.h>

/* Where a program runs; part of counter keys and events. */
enum berth_hook {
	BERTH_HOOK_TC_INGRESS = 0,
	BERTH_HOOK_TC_EGRESS = 1,
	BERTH_HOOK_XDP = 2,
};

/*
 * Why a packet was dropped. Programs return these negated from helpers; the
 * entry program counts the reason and decides the verdict at one exit label.
 */
enum berth_drop_reason {
	BERTH_DROP_NONE = 0,
	BERTH_DROP_MALFORMED = 1,	/* headers shorter than they claim */
	BERTH_DROP_PROTO_FILTER = 2,	/* cfg_drop_l4proto matched */
	BERTH_DROP__MAX = 16,		/* size of the reason counter array */
};

/* Packet counter key: one slot per interface and hook. */
struct berth_ifcount_key {
	__u32 ifindex;
	__u8 hook;		/* enum berth_hook */
	__u8 pad[3];
};

/* Packet and byte counter; per-CPU in maps, summed by user space. */
struct berth_counter {
	__u64 packets;
	__u64 bytes;
};

/* A sampled packet, sent through the event ring buffer. */
struct berth_pkt_event {
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u32 ifindex;
	__u32 len;		/* skb->len or XDP frame length */
	__u16 eth_proto;	/* host byte order */
	__u8 hook;		/* enum berth_hook */
	__u8 l4proto;		/* IPPROTO_*, 0 when not IP */
	__u8 drop_reason;	/* enum berth_drop_reason */
	__u8 pad[3];
	__u32 saddr4;		/* network byte order, IPv4 only */
	__u32 daddr4;
};

#endif /* BERTH_ABI_H */
