/** The datapaths the conformance and attack suites run against: BERTH_CONFORMANCE_DATAPATHS (comma-separated), else all three. */
export const DATAPATHS = (process.env.BERTH_CONFORMANCE_DATAPATHS ?? 'iptables,nftables,bpf').split(',').filter(Boolean);
