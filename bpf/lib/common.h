/* SPDX-License-Identifier: Apache-2.0 */
/* Includes and small helpers every berth BPF program uses. */
#ifndef BERTH_LIB_COMMON_H
#define BERTH_LIB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "berth_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Verdict-neutral result of a parse: what the counters and events need. */
struct berth_pkt_info {
	__u16 eth_proto;	/* host byte order */
	__u8 l4proto;
	__u32 saddr4;
	__u32 daddr4;
};

#endif /* BERTH_LIB_COMMON_H */
