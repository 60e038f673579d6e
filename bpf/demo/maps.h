/* SPDX-License-Identifier: Apache-2.0 */
/* The demo counting program's maps; every map declared once, here. */
#ifndef BERTH_DEMO_MAPS_H
#define BERTH_DEMO_MAPS_H

#include "lib/common.h"
#include "count_abi.h"

/* Number of (interface, hook) slots counted; entries beyond are not counted. */
#ifndef BERTH_COUNT_MAX_SLOTS
#define BERTH_COUNT_MAX_SLOTS 1024
#endif

/* Bytes of the event ring buffer; a power of two and a multiple of the page size. */
#ifndef BERTH_EVENTS_BYTES
#define BERTH_EVENTS_BYTES (256 * 1024)
#endif

/* berth_ifcount_key -> berth_counter (per CPU): packets seen per interface and hook. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BERTH_COUNT_MAX_SLOTS);
	__type(key, struct berth_ifcount_key);
	__type(value, struct berth_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_counts SEC(".maps");

/* enum berth_drop_reason -> berth_counter (per CPU): drops per reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BERTH_DROP__MAX);
	__type(key, __u32);
	__type(value, struct berth_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_drops SEC(".maps");

/* Sampled berth_pkt_event records for user space. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BERTH_EVENTS_BYTES);
} berth_events SEC(".maps");

/* Events that did not fit in the ring buffer (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} berth_events_lost SEC(".maps");

#endif /* BERTH_DEMO_MAPS_H */
