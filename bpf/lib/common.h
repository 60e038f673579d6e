/* SPDX-License-Identifier: Apache-2.0 */
/* The includes every berth BPF program starts from. */
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

#endif /* BERTH_LIB_COMMON_H */
