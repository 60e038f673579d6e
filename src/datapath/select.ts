/** Builds the datapath backend berthd chose, and clears what the others left behind. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Datapath } from './datapath.js';
import { IptablesDatapath } from './iptables/index.js';
import { NftablesDatapath } from './nftables/index.js';
import { BpfDatapath } from './bpf/index.js';
import { BPFFS_ROOT } from '../bpf/bpffs.js';

export async function createDatapath(kind: 'bpf' | 'nftables' | 'iptables' | 'none', log: Logger, opts: { bpffs?: string; ctMax?: number; pubMax?: number } = {}): Promise<Datapath | undefined> {
  // First what may refuse (pinned maps of a layout the eBPF datapath cannot take over), before anything changes.
  const bpf = kind === 'bpf' ? await BpfDatapath.create({ log, ...opts }) : undefined;
  // Switching backends across a restart: nothing of the others may stay.
  if (kind !== 'iptables') await (await IptablesDatapath.create({ log })).teardown();
  if (kind !== 'nftables') await (await NftablesDatapath.create({ log })).teardown();
  if (kind !== 'bpf' && existsSync(join(opts.bpffs ?? BPFFS_ROOT, 'berth'))) await (await BpfDatapath.forTeardown({ log, ...opts })).teardown();
  if (kind === 'iptables') return IptablesDatapath.create({ log });
  if (kind === 'nftables') return NftablesDatapath.create({ log });
  return bpf;
}
