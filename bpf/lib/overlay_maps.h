/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maps of the overlay programs, every one declared once, here. All are pinned
 * by name, so the tunnels keep working while berthd is down and a restarted
 * berthd takes the same maps over.
 */
#ifndef BERTH_LIB_OVERLAY_MAPS_H
#define BERTH_LIB_OVERLAY_MAPS_H

#include "common.h"
#include "berth_overlay.h"

/* Local overlay sandbox ports; entries. */
#ifndef BERTH_OVL_MAX_PORTS
#define BERTH_OVL_MAX_PORTS 4096
#endif
/* Remote endpoints across all overlay networks; entries. */
#ifndef BERTH_OVL_MAX_REMOTE
#define BERTH_OVL_MAX_REMOTE 65536
#endif

/* ifindex of a sandbox veth's host side -> berth_ovl_port: frames from it are overlay frames. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct berth_ovl_port);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_ports SEC(".maps");

/* VNI -> berth_ovl_net: the bridge decapsulated frames are delivered to. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct berth_ovl_net);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_nets SEC(".maps");

/* underlay IPv4 (host order) -> 1: cluster hosts whose VXLAN is accepted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_hosts SEC(".maps");

/* (VNI, MAC) -> remote host: endpoints the cluster store knows. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_REMOTE);
	__type(key, struct berth_ovl_mac_key);
	__type(value, struct berth_ovl_remote);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_remote_macs SEC(".maps");

/* (VNI, MAC) -> remote host, learned from decapsulated frames of registered hosts (peers without berth). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BERTH_OVL_MAX_REMOTE);
	__type(key, struct berth_ovl_mac_key);
	__type(value, struct berth_ovl_remote);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_learned SEC(".maps");

/* (VNI, MAC) -> local port: unicast frames from the tunnel skip the bridge. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_PORTS);
	__type(key, struct berth_ovl_mac_key);
	__type(value, struct berth_ovl_local);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_locals SEC(".maps");

/* (VNI, IPv4) -> MAC: ARP requests for remote endpoints are answered from here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_REMOTE);
	__type(key, struct berth_ovl_ip_key);
	__type(value, struct berth_ovl_neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_remote_ips SEC(".maps");

/* enum berth_ovl_stat -> berth_counter (per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BERTH_OVL_STAT__MAX);
	__type(key, __u32);
	__type(value, struct berth_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_stats SEC(".maps");

#endif /* BERTH_LIB_OVERLAY_MAPS_H */
