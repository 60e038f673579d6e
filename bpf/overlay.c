/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth's overlay: VXLAN between cluster hosts, with the kernel's
 * collect-metadata ("external") vxlan device doing the UDP framing and these
 * programs deciding everything else.
 *
 * - berth_ovl_from_sandbox, tc ingress on an overlay sandbox's veth (host
 *   side): a frame for a remote endpoint gets its tunnel key (VNI, remote
 *   host) and is redirected to the vxlan device; an ARP request for a remote
 *   endpoint is answered here from the cluster's knowledge instead of being
 *   flooded; everything else is left to the network's local bridge.
 * - berth_ovl_from_tunnel, tc ingress on the vxlan device: only frames of a
 *   known VNI from a registered cluster host are accepted; they go to that
 *   network's bridge, and the inner source MAC is learned so peers without
 *   berth (a plain Linux vxlan device on the same VNI) are reachable too.
 *   A unicast frame for a local endpoint goes straight to its port.
 *
 * Both check a tunnelled frame against the policy first (lib/overlay_policy.h):
 * who may send it as whom, and to whom, on icc=false and internal networks.
 */
#include "lib/common.h"
#include "lib/overlay_maps.h"
#include "lib/overlay_policy.h"

#define ETH_P_ARP_ 0x0806
#define ARPOP_REQUEST_ 1
#define ARPOP_REPLY_ 2
#define OVL_TTL 64

/* The ARP payload of Ethernet/IPv4, field by field (no padding on the wire). */
struct arp4 {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline void __stat(__u32 which, __u32 len)
{
	struct berth_counter *c = bpf_map_lookup_elem(&berth_ovl_stats, &which);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

static __always_inline int __is_multicast(const __u8 *mac)
{
	return mac[0] & 1;
}

static __always_inline struct berth_ovl_remote *__remote_of(__u32 vni, const __u8 *mac)
{
	struct berth_ovl_mac_key k = { .vni = vni };
	struct berth_ovl_remote *r;

	__builtin_memcpy(k.mac, mac, 6);
	r = bpf_map_lookup_elem(&berth_ovl_remote_macs, &k);
	if (!r)
		r = bpf_map_lookup_elem(&berth_ovl_learned, &k);
	return r;
}

/*
 * Turns an ARP request for a remote endpoint into the reply, in place, and
 * sends it back out of the port it came in on (into the sandbox). Returns a
 * tc verdict, or -1 when the request is not ours to answer.
 */
static __always_inline int __arp_reply_v4(struct __sk_buff *skb, __u32 vni)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp4 *arp = (void *)(eth + 1);
	struct berth_ovl_ip_key k = { .vni = vni };
	struct berth_ovl_neigh *n;
	__u8 spa[4];

	if ((void *)(arp + 1) > data_end)
		return -1;
	if (arp->hrd != bpf_htons(1) || arp->pro != bpf_htons(ETH_P_IP) || arp->hln != 6 ||
	    arp->pln != 4 || arp->op != bpf_htons(ARPOP_REQUEST_))
		return -1;
	__builtin_memcpy(&k.ip, arp->tpa, 4);
	n = bpf_map_lookup_elem(&berth_ovl_remote_ips, &k);
	if (!n)
		return -1;

	__builtin_memcpy(spa, arp->spa, 4);
	__builtin_memcpy(eth->h_dest, arp->sha, 6);
	__builtin_memcpy(eth->h_source, n->mac, 6);
	arp->op = bpf_htons(ARPOP_REPLY_);
	__builtin_memcpy(arp->tha, arp->sha, 6);
	__builtin_memcpy(arp->tpa, spa, 4);
	__builtin_memcpy(arp->sha, n->mac, 6);
	__builtin_memcpy(arp->spa, &k.ip, 4);
	__stat(BERTH_OVL_TX_ARP_REPLY, skb->len);
	return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int berth_ovl_from_sandbox(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct berth_ovl_port *port;
	struct berth_ovl_remote *r;
	struct bpf_tunnel_key key = {};
	__u32 ifindex = skb->ifindex;
	int ret;

	port = bpf_map_lookup_elem(&berth_ovl_ports, &ifindex);
	if (!port || (void *)(eth + 1) > data_end)
		return TC_ACT_UNSPEC;

	if (__is_multicast(eth->h_dest)) {
		if (eth->h_proto == bpf_htons(ETH_P_ARP_)) {
			ret = __arp_reply_v4(skb, port->vni);
			if (ret >= 0)
				return ret;
		}
		/* Broadcasts stay on the local bridge: remote neighbours are answered above. */
		__stat(BERTH_OVL_TX_PASS, skb->len);
		return TC_ACT_UNSPEC;
	}

	r = __remote_of(port->vni, eth->h_dest);
	if (!r) {
		__stat(BERTH_OVL_TX_PASS, skb->len);
		return TC_ACT_UNSPEC;
	}
	ret = ovl_tx_check(skb, ifindex, port->vni);
	if (ret < 0) {
		ovl_drop_count(-ret, skb->len);
		return TC_ACT_SHOT;
	}
	key.remote_ipv4 = r->host_ip;
	key.tunnel_id = port->vni;
	key.tunnel_ttl = OVL_TTL;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return TC_ACT_SHOT;
	__stat(BERTH_OVL_TX_ENCAP, skb->len);
	return bpf_redirect(port->vxlan_ifindex, 0);
}

SEC("tc")
int berth_ovl_from_tunnel(struct __sk_buff *skb)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct bpf_tunnel_key key = {};
	struct berth_ovl_net *net;
	struct berth_ovl_mac_key lk = {};
	struct berth_ovl_remote rv = {};
	struct berth_ovl_local *local;
	__u32 host, vni;
	int ret;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0) {
		__stat(BERTH_OVL_RX_NO_KEY, skb->len);
		return TC_ACT_SHOT;
	}
	host = key.remote_ipv4;
	if (!bpf_map_lookup_elem(&berth_ovl_hosts, &host)) {
		__stat(BERTH_OVL_RX_UNKNOWN_HOST, skb->len);
		return TC_ACT_SHOT;
	}
	vni = key.tunnel_id;
	net = bpf_map_lookup_elem(&berth_ovl_nets, &vni);
	if (!net) {
		__stat(BERTH_OVL_RX_UNKNOWN_VNI, skb->len);
		return TC_ACT_SHOT;
	}

	ret = ovl_rx_check(skb, vni, host);
	if (ret == -BERTH_DROP_MALFORMED) {
		__stat(BERTH_OVL_RX_MALFORMED, skb->len);
		return TC_ACT_SHOT;
	}
	if (ret < 0) {
		ovl_drop_count(-ret, skb->len);
		return TC_ACT_SHOT;
	}

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end) {
		__stat(BERTH_OVL_RX_MALFORMED, skb->len);
		return TC_ACT_SHOT;
	}
	if (!__is_multicast(eth->h_source)) {
		lk.vni = vni;
		__builtin_memcpy(lk.mac, eth->h_source, 6);
		/* Endpoints the store knows are not learned: the store is the authority for them. */
		if (!bpf_map_lookup_elem(&berth_ovl_remote_macs, &lk)) {
			rv.host_ip = host;
			bpf_map_update_elem(&berth_ovl_learned, &lk, &rv, BPF_ANY);
		}
	}
	__stat(BERTH_OVL_RX_DECAP, skb->len);
	if (!__is_multicast(eth->h_dest)) {
		lk.vni = vni;
		__builtin_memcpy(lk.mac, eth->h_dest, 6);
		local = bpf_map_lookup_elem(&berth_ovl_locals, &lk);
		/* Straight out of the sandbox's port: the bridge has nothing to decide for it. */
		if (local)
			return bpf_redirect(local->ifindex, 0);
	}
	/* Out of the bridge device: the bridge forwards it to the right port, or floods a broadcast. */
	return bpf_redirect(net->bridge_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
