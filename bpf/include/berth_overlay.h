/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structs and constants shared by bpf/overlay.c and user space
 * (src/datapath/overlay/abi.ts mirrors them field by field). Kept apart from
 * berth_abi.h so the overlay and the main datapath evolve independently.
 * Fields are laid out without implicit padding.
 */
#ifndef BERTH_OVERLAY_H
#define BERTH_OVERLAY_H

#include <linux/types.h>

/* What the overlay programs count (index of berth_ovl_stats). */
enum berth_ovl_stat {
	BERTH_OVL_TX_ENCAP = 0,		/* frame to a remote endpoint, tunnel key set */
	BERTH_OVL_TX_ARP_REPLY = 1,	/* ARP request for a remote endpoint answered */
	BERTH_OVL_TX_PASS = 2,		/* frame left to the local bridge */
	BERTH_OVL_RX_DECAP = 3,		/* frame from a cluster host delivered to its bridge */
	BERTH_OVL_RX_NO_KEY = 4,	/* dropped: no tunnel metadata */
	BERTH_OVL_RX_UNKNOWN_HOST = 5,	/* dropped: outer source is no registered host */
	BERTH_OVL_RX_UNKNOWN_VNI = 6,	/* dropped: VNI of no overlay network here */
	BERTH_OVL_RX_MALFORMED = 7,	/* dropped: inner frame cut short */
	BERTH_OVL_STAT__MAX = 8,
};

/* A local overlay sandbox port (host side of its veth), by ifindex. */
struct berth_ovl_port {
	__u32 vni;
	__u32 vxlan_ifindex;	/* the collect-metadata vxlan device of the network's UDP port */
};

/* An overlay network on this host, by VNI. */
struct berth_ovl_net {
	__u32 bridge_ifindex;
	__u32 pad;
};

/* Remote endpoint by MAC: where its frames go. */
struct berth_ovl_mac_key {
	__u32 vni;
	__u8 mac[6];
	__u8 pad[2];
};

struct berth_ovl_remote {
	__u32 host_ip;		/* underlay IPv4, host byte order (as the tunnel key helpers take it) */
	__u32 pad;
};

/* A local overlay endpoint by (VNI, MAC): decapsulated frames go straight to its port. */
struct berth_ovl_local {
	__u32 ifindex;		/* host side of the sandbox's veth */
	__u32 pad;
};

/* Remote endpoint by IPv4: what ARP is answered with. */
struct berth_ovl_ip_key {
	__u32 vni;
	__be32 ip;		/* network byte order, as in the ARP payload */
};

struct berth_ovl_neigh {
	__u8 mac[6];
	__u8 pad[2];
};

/*
 * Policy across hosts (issue 16): what a tunnelled frame must satisfy on the
 * host it leaves and again on the host it enters. Drops are counted in
 * berth_ovl_drops by enum berth_drop_reason (berth_abi.h's numbering).
 */
enum berth_ovl_policy_flag {
	BERTH_OVL_POL_NO_ICC = 1 << 0,	/* icc=false: only links (and their replies) cross hosts */
	BERTH_OVL_POL_INTERNAL = 1 << 1,	/* internal: only store-known members, no way out through a peer */
};

/* An overlay network's policy, by VNI. */
struct berth_ovl_policy {
	__u32 flags;		/* enum berth_ovl_policy_flag */
	__u32 pad;
};

enum berth_ovl_guard_flag {
	BERTH_OVL_GUARD_EGRESS = 1 << 0,	/* the sandbox has an egress allow-list: members only through the tunnel */
};

/* A local overlay port's own addresses, by ifindex: what it may send as. */
struct berth_ovl_guard {
	__u8 mac[6];
	__u16 flags;		/* enum berth_ovl_guard_flag */
	__be32 v4;		/* network byte order; 0: none */
	__u32 pad;
};

/* A link across hosts: client may open connections to target's port. */
struct berth_ovl_link_key {
	__u32 vni;
	__be32 client;
	__be32 target;
	__be16 port;		/* network byte order */
	__u8 proto;
	__u8 pad;
};

/* A connection a link admitted, in its original direction; the value is the last-seen time (ns). */
struct berth_ovl_ct_key {
	__u32 vni;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

#endif /* BERTH_OVERLAY_H */
