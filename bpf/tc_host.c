/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tc egress of lo: connections the host opens to its own addresses.
 *
 * The host reaching a published port (on 127.0.0.1, ::1 or any of its
 * addresses) is DNAT-ed here and redirected into the sandbox, without a
 * proxy; loopback sources are masqueraded to the sandbox's gateway, so the
 * sandbox can answer, and the answers are put back into lo translated.
 * All other loopback traffic passes untouched. Every path ends at the one
 * exit, `out:` (lib/dp_verdict.h).
 */
#include "lib/dp_ct.h"
#include "lib/dp_icmp.h"
#include "lib/dp_nat.h"
#include "lib/dp_publish.h"
#include "lib/dp_verdict.h"

SEC("tc")
int berth_from_host(struct __sk_buff *skb)
{
	struct dp_ctx c = { .skb = skb, .local = 1, .hook = BERTH_HOOK_HOST };
	const struct berth_dp_pub *pub;
	int ret;

	if (parse_pkt(skb, &c.p) != 0) {
		ret = BERTH_DELIVERY_NONE;
		goto out;
	}
	dp_begin(&c);
	c.in_ifindex = LO_IFINDEX;
	ret = known_flow(&c);
	if (ret != BERTH_DELIVERY_NONE)
		goto out;
	pub = pub_find(&c);
	if (pub)
		ret = publish(&c, pub);
	else
		ret = to_stack(&c, BERTH_RULE_NOT_OURS);
out:
	return dp_exit(&c, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
