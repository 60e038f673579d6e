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

/* VNI -> berth_ovl_policy: networks whose tunnelled frames are checked (absent: icc, not internal). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct berth_ovl_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_policy SEC(".maps");

/* ifindex of a local overlay port -> berth_ovl_guard: the MAC and address it may send from. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct berth_ovl_guard);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_guard SEC(".maps");

/* (VNI, IPv4) -> MAC of a local endpoint: a tunnelled frame may not claim these, and on checked networks is only for these. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_PORTS);
	__type(key, struct berth_ovl_ip_key);
	__type(value, struct berth_ovl_neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_local_ips SEC(".maps");

/* Links across hosts; entries (client, target, exposed port). */
#ifndef BERTH_OVL_MAX_LINKS
#define BERTH_OVL_MAX_LINKS 65536
#endif
/* berth_ovl_link_key -> 1: on an icc=false network, the connections that may cross hosts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BERTH_OVL_MAX_LINKS);
	__type(key, struct berth_ovl_link_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_links SEC(".maps");

/* Connections tracked across hosts; entries. */
#ifndef BERTH_OVL_MAX_CT
#define BERTH_OVL_MAX_CT 65536
#endif
/* berth_ovl_ct_key (original direction) -> last seen (ns): replies of linked connections. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BERTH_OVL_MAX_CT);
	__type(key, struct berth_ovl_ct_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_ct SEC(".maps");

/* enum berth_drop_reason -> berth_counter (per CPU): the overlay's policy drops. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BERTH_DROP__MAX);
	__type(key, __u32);
	__type(value, struct berth_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} berth_ovl_drops SEC(".maps");

#endif /* BERTH_LIB_OVERLAY_MAPS_H */
