/** Builds the datapath backend berthd chose, and clears what another backend left behind. */
import type { Logger } from 'pino';
import type { Datapath } from './datapath.js';
import { IptablesDatapath } from './iptables/index.js';

export async function createDatapath(kind: 'bpf' | 'iptables' | 'none', log: Logger): Promise<Datapath | undefined> {
  if (kind === 'iptables') return IptablesDatapath.create({ log });
  // Switching away from iptables across a restart: nothing of it may stay.
  await (await IptablesDatapath.create({ log })).teardown();
  return undefined;
}
