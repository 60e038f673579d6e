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

/*
 * The version of this header's contract with user space (structs, enum
 * values, map layouts). Raise it with any change a pinned datapath of the
 * previous build could not read; `berth version` reports it, and
 * src/bpf/abi.ts's ABI_VERSION must match (test/unit/abi.test.ts).
 */
#define BERTH_ABI_VERSION 1

/*
 * Why a packet was dropped. Programs return these negated from helpers; the
 * entry program counts the reason and decides the verdict at one exit label.
 */
enum berth_drop_reason {
	BERTH_DROP_NONE = 0,
	BERTH_DROP_MALFORMED = 1,	/* headers shorter than they claim */
	BERTH_DROP_PROTO_FILTER = 2,	/* the demo's (bpf/demo/count.c): cfg_drop_l4proto matched */
	/* The datapath's (bpf/tc_*.c); src/bpf/abi.ts names each. */
	BERTH_DROP_SPOOF_MAC = 3,	/* a sandbox sent with a MAC not its own */
	BERTH_DROP_SPOOF_IP = 4,	/* ... or an IP address not its own */
	BERTH_DROP_SPOOF_ARP = 5,	/* ... or ARP for an address not its own */
	BERTH_DROP_FAMILY = 6,		/* IPv6 on an IPv4-only network (or the reverse) */
	BERTH_DROP_L2 = 7,		/* neither IP nor ARP from a sandbox */
	BERTH_DROP_ISOLATION = 8,	/* between two networks */
	BERTH_DROP_ICC = 9,		/* within an icc=false network, no link */
	BERTH_DROP_INTERNAL = 10,	/* an internal network's traffic beyond it */
	BERTH_DROP_LOOPBACK = 11,	/* to 127.0.0.0/8 or ::1 from off the host */
	BERTH_DROP_DIRECT = 12,		/* from outside straight to a sandbox address */
	BERTH_DROP_ALLOWLIST = 13,	/* a published port's allow-list refused the source */
	BERTH_DROP_CT_FULL = 14,	/* no room in the connection table */
	BERTH_DROP_NAT_EXHAUSTED = 15,	/* no free port or ICMP id to masquerade with */
	BERTH_DROP_FRAGMENT = 16,	/* a fragment that policy cannot place */
	BERTH_DROP_NO_CONFIG = 17,	/* a berth interface with no network known */
	/* 18: reserved (a translated packet without a route is left to the stack, not dropped) */
	BERTH_DROP_EGRESS = 19,		/* outside a sandbox's egress allow-list */
	/* A sandbox is never a router for its peers (issue 17). */
	BERTH_DROP_ROUTER_ADV = 20,	/* a sandbox sent an ICMPv6 router advertisement */
	BERTH_DROP_REDIRECT = 21,	/* ... an ICMP or ICMPv6 redirect */
	BERTH_DROP_DHCP_SERVER = 22,	/* ... a DHCP (67 -> 68) or DHCPv6 (547 -> 546) server reply */
	BERTH_DROP_SPOOF_ND = 23,	/* ... a neighbour advertisement for a target not its own */
	BERTH_DROP_DNS_OUTSIDE = 24,	/* to a gateway's DNS port from beyond the network */
	BERTH_DROP_PUBLISH_POLICY = 25,	/* the operator's publish policy refused the source (berth_dp_pubpol) */
	BERTH_DROP_OVERLAY_SOURCE = 26,	/* an overlay frame whose inner source the store does not place on its sending host */
	BERTH_DROP__MAX = 32,		/* size of the reason counter array */
};

/* Packet and byte counter; per-CPU in maps, summed by user space. */
struct berth_counter {
	__u64 packets;
	__u64 bytes;
};

/* ------------------------------------------------------------------------
 * The datapath (bpf/tc_container.c, bpf/tc_uplink.c, bpf/tc_host.c).
 *
 * Addresses are 16 bytes everywhere: IPv6 as is, IPv4 as an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d), so one map serves both families. Ports in
 * connection keys are in network byte order (copied from the packet); ports
 * in the publish table are in host byte order (compared as ranges).
 * ------------------------------------------------------------------------ */

/* A berth network (map berth_dp_nets, key: the bridge's ifindex). */
enum berth_net_flags {
	BERTH_NET_V4 = 1 << 0,
	BERTH_NET_V6 = 1 << 1,
	BERTH_NET_ICC = 1 << 2,
	BERTH_NET_INTERNAL = 1 << 3,
	BERTH_NET_MASQ = 1 << 4,
	BERTH_NET_ROUTED = 1 << 5,	/* routed: the subnet spans every host's block; members cross the uplink untranslated */
	BERTH_NET_PUBPOL = 1 << 6,	/* its published ports admit only the sources in berth_dp_pubpol */
};

struct berth_dp_net {
	__u8 gw4[16];		/* gateway, IPv4-mapped */
	__u8 gw6[16];
	__u8 gw_mac[6];		/* the bridge's MAC: routed frames come from it */
	__u16 flags;		/* enum berth_net_flags */
	__u32 bridge;		/* ifindex */
	__u32 mtu;		/* the bridge's MTU: TCP from the host is clamped to it */
};

/* A sandbox's endpoint (maps berth_dp_ep_ip, key: an address; berth_dp_ep_if, key: ifindex). */
struct berth_dp_ep {
	__u8 v4[16];		/* own addresses; zero when absent */
	__u8 v6[16];
	__u8 mac[6];
	__u16 flags;		/* BERTH_EP_* */
	__u32 ifindex;		/* the host side of its veth */
	__u32 net;		/* its network (bridge ifindex) */
	__u32 pad;
};

enum berth_ep_flags {
	BERTH_EP_HAS_V4 = 1 << 0,
	BERTH_EP_HAS_V6 = 1 << 1,
	BERTH_EP_EGRESS = 1 << 2,	/* outbound traffic limited to berth_dp_egress */
};

struct berth_dp_addr {
	__u8 a[16];
};

/*
 * LPM key over an address scoped by an id (berth_dp_subnets: id 0, every
 * berth subnet -> bridge ifindex; berth_dp_allow: publish id; berth_dp_egress:
 * endpoint ifindex; berth_dp_pubpol: bridge ifindex). The id keeps the address 8-byte aligned, too.
 */
struct berth_dp_lpm_id {
	__u32 prefixlen;	/* 32 + address bits */
	__u32 id;		/* big-endian, so the trie matches it as a prefix */
	__u8 a[16];
};

/*
 * What an egress allow-list admits towards one prefix (map berth_dp_egress,
 * key: berth_dp_lpm_id with the endpoint's ifindex): any port when @n is 0,
 * else one of @rule, each (protocol << 16) | port, with 0 for "any".
 */
#define BERTH_EGRESS_RULES 7
struct berth_dp_egress {
	__u32 n;
	__u32 rule[BERTH_EGRESS_RULES];
};

/* A link: @client may open connections to @target's @port (map berth_dp_links). */
struct berth_dp_link_key {
	__u8 client[16];
	__u8 target[16];
	__u16 port;		/* network byte order */
	__u8 proto;
	__u8 pad;
};

enum berth_pub_flags {
	BERTH_PUB_ANY4 = 1 << 0,	/* every IPv4 address of the host */
	BERTH_PUB_ANY6 = 1 << 1,	/* every IPv6 address of the host */
	BERTH_PUB_LOOPBACK = 1 << 2,	/* bound to 127.0.0.1 or ::1: from the host only */
	BERTH_PUB_ALLOW = 1 << 3,	/* has an allow-list in berth_dp_allow */
};

/*
 * One published port or range: one entry, whatever the range's size. The
 * table (map berth_dp_pub) holds two generations of cfg_pub_max entries
 * (BERTH_PUB_MAX unless berthd --pub-max says otherwise, at most BERTH_PUB_MAX_LIMIT)
 * sorted by (proto, start, end); berth_dp_pubsel says which is live and how
 * many entries it has, so user space rewrites the other and flips one word.
 */
struct berth_dp_pub {
	__u8 host_ip[16];	/* the bound address (unused with ANY4/ANY6) */
	__u8 target[16];	/* the sandbox address */
	__u16 start;		/* host ports [start, end], host byte order */
	__u16 end;
	__u16 cport;		/* container port of @start */
	__u8 proto;
	__u8 flags;		/* enum berth_pub_flags */
	__u32 id;		/* allow-list id (berth_dp_allow) */
	__u32 walk;		/* entries before this one whose range may still cover its start (other bind addresses) */
};

#define BERTH_PUB_MAX 65536
#define BERTH_PUB_MAX_LIMIT (1 << 20)
#define BERTH_PUB_WALK 64	/* the longest walk back a lookup makes */
#define BERTH_PUB_GEN_SHIFT 31

/* Host-wide settings (map berth_dp_cfg, index 0). */
struct berth_dp_cfg {
	__u32 uplink;		/* ifindex of the uplink; 0: unknown */
	__u32 flags;		/* BERTH_CFG_* */
	__u32 event_rate;	/* events per second per CPU at most; 0: no events */
	__u32 pad;
};

enum berth_cfg_flags {
	BERTH_CFG_EVENTS_DROP = 1 << 0,
	BERTH_CFG_EVENTS_FLOW = 1 << 1,
};

/* A connection table key: the packet's own tuple (ICMP echo: id in sport for requests, dport for replies). */
struct berth_ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

enum berth_ct_flags {
	BERTH_CT_REPLY = 1 << 0,	/* this entry matches the reply direction */
	BERTH_CT_SNAT = 1 << 1,		/* the source is rewritten */
	BERTH_CT_DNAT = 1 << 2,		/* the destination is rewritten */
	BERTH_CT_TO_HOST = 1 << 3,	/* deliver to the host's stack (lo ingress) */
	BERTH_CT_CLOSING = 1 << 4,	/* TCP FIN or RST seen */
	BERTH_CT_MASQ = 1 << 5,		/* an outbound masquerade flow */
	BERTH_CT_PUBLISH = 1 << 6,	/* a published-port flow */
	BERTH_CT_LINK = 1 << 7,		/* a flow a link admitted (no translation) */
	BERTH_CT_NEW = 1 << 8,		/* unconfirmed: in berth_dp_ct_new until the client answers a reply */
};

/* What a packet matching a key becomes, and when the entry was last used. */
struct berth_ct_val {
	__u8 saddr[16];		/* translated tuple */
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 flags;		/* enum berth_ct_flags */
	__u16 pad;
	__u64 last_seen;	/* bpf_ktime_get_ns() */
	__u64 created;
	__u64 packets;
	__u64 bytes;
	__u32 pub_id;		/* a published flow: its publish as (proto << 16) | first host port; 0: none */
	__u32 ack;		/* unconfirmed reply entry: the SYN-ACK's sequence + 1 (TCP), 1 once a reply passed (other) */
};

/* What berth_dp_traffic counts, in the key's high 32 bits; the low 32 bits say which. */
enum berth_traffic_kind {
	BERTH_TRAFFIC_NET_OUT = 1,	/* packets sandboxes of a network sent (id: its bridge's ifindex) */
	BERTH_TRAFFIC_NET_IN = 2,	/* packets the datapath delivered into a network (id: bridge ifindex) */
	BERTH_TRAFFIC_PUB = 3,		/* packets of published flows, both ways (id: (proto << 16) | first host port) */
};

/* berth_dp_stats slots (per CPU). */
enum berth_dp_stat {
	BERTH_STAT_CT_CREATED = 0,
	BERTH_STAT_CT_EXPIRED_HIT = 1,	/* lookups that found a stale entry */
	BERTH_STAT_CT_INSERT_FAIL = 2,
	BERTH_STAT_NAT_RETRY = 3,	/* masquerade ports that were taken and retried */
	BERTH_STAT_REDIRECT = 4,
	BERTH_STAT_REDIRECT_PEER = 5,
	BERTH_STAT_REDIRECT_NEIGH = 6,
	BERTH_STAT_TO_STACK = 7,
	BERTH_STAT_EVENTS_LOST = 8,
	BERTH_STAT_CT_CONFIRMED = 9,	/* flows moved from berth_dp_ct_new to berth_dp_ct */
	BERTH_STAT__MAX = 16,
};

/*
 * `berth explain`: user space runs the loaded programs on a synthetic packet
 * with BPF_PROG_TEST_RUN and this skb mark. The programs then decide as
 * always but change no state (no connection entry, no counter, no event)
 * and leave their decision in the __sk_buff cb words (BERTH_EXPLAIN_CB_*).
 */
#define BERTH_EXPLAIN_MARK 0xbe7e0001
enum berth_explain_cb {
	BERTH_EXPLAIN_CB_REASON = 0,	/* enum berth_drop_reason of a drop */
	BERTH_EXPLAIN_CB_RULE = 1,	/* enum berth_rule: what decided */
	BERTH_EXPLAIN_CB_IFINDEX = 2,	/* where a redirect sends it */
	BERTH_EXPLAIN_CB_DELIVERY = 3,	/* enum berth_delivery */
};

/* The rule that decided a packet's fate. */
enum berth_rule {
	BERTH_RULE_NONE = 0,
	BERTH_RULE_FLOW = 1,		/* a packet of a known (translated or linked) flow */
	BERTH_RULE_ICC = 2,		/* same network, icc=true */
	BERTH_RULE_LINK = 3,		/* icc=false network, a link admits client -> target:port */
	BERTH_RULE_ND = 4,		/* neighbour discovery, ARP, broadcast or multicast within a network */
	BERTH_RULE_PUBLISH = 5,		/* a published port (DNAT) */
	BERTH_RULE_GATEWAY = 6,		/* the network's gateway: the host */
	BERTH_RULE_SUBNET = 7,		/* an address of its own subnet no sandbox holds: the bridge decides */
	BERTH_RULE_HOST = 8,		/* an address of the host */
	BERTH_RULE_MASQ = 9,		/* outbound, masqueraded */
	BERTH_RULE_ROUTE = 10,		/* outbound without masquerade, or no address to masquerade to */
	BERTH_RULE_NOT_OURS = 11,	/* not berth's traffic: passed untouched */
	BERTH_RULE_ICMP_ERROR = 12,	/* an ICMP error about a translated flow */
	BERTH_RULE_POLICY = 13,		/* dropped by a policy (the reason says which) */
};

/* Where a packet goes: what the programs' helpers return (a drop: the negated reason), and explain's word. */
enum berth_delivery {
	BERTH_DELIVERY_NONE = 0,	/* no decision: the packet is not berth's, passed untouched */
	BERTH_DELIVERY_SANDBOX = 1,	/* redirected into a sandbox (ifindex: its host-side veth) */
	BERTH_DELIVERY_FIB = 2,		/* redirected out of a host interface by the FIB (ifindex) */
	BERTH_DELIVERY_LO = 3,		/* put back into lo: the host's own connection */
	BERTH_DELIVERY_STACK = 4,	/* passed to the host's stack / the bridge */
	BERTH_DELIVERY_DROP = 5,	/* explain only: helpers return the negated drop reason */
};

/* Which datapath program saw a packet (berth_dp_event.hook). */
enum berth_hook {
	BERTH_HOOK_CONTAINER = 0,	/* tc ingress of a sandbox's host-side veth (tc_container.c) */
	BERTH_HOOK_UPLINK = 1,		/* tc ingress of the uplink (tc_uplink.c) */
	BERTH_HOOK_HOST = 2,		/* tc egress of lo: the host's own connections (tc_host.c) */
};

/* What a datapath event reports (berth_dp_event.kind). */
enum berth_event_kind {
	BERTH_EVENT_DROP = 1,
	BERTH_EVENT_FLOW = 2,		/* a new connection, with its translated tuple */
};

/* A datapath event (ring buffer berth_dp_events): a drop or a new connection. */
struct berth_dp_event {
	__u64 ts_ns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;		/* network byte order */
	__u16 dport;
	__u8 proto;
	__u8 kind;		/* enum berth_event_kind */
	__u8 reason;		/* enum berth_drop_reason */
	__u8 hook;		/* enum berth_hook */
	__u32 ifindex;
	__u8 nsaddr[16];	/* new connections: the translated tuple */
	__u8 ndaddr[16];
	__u16 nsport;
	__u16 ndport;
	__u32 pad[2];
};

#endif /* BERTH_ABI_H */
