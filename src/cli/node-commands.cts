/** `berth node ls`: the cluster's hosts as this berthd sees them (src/cluster/members.ts). */
import type { NodeView } from '../controller/core.js';
import type { Api } from './commands.cjs';
import { Option, type Command } from './spec.cjs';
import { printJson, table } from './table.cjs';

function lastSeen(n: NodeView, now: number): string {
  if (n.state === 'ready') return 'now';
  if (!n.lastSeen) return `before this berthd started (lapsed ${n.lapsedFor ?? '?'} s here)`;
  return `${n.lastSeen} (${Math.round((now - Date.parse(n.lastSeen)) / 1000)} s ago)`;
}

export function addNodeCommands(program: Command, client: () => Api): void {
  const node = program.command('node').description('the hosts of the cluster (berthd --store etcd://...)');
  node
    .command('ls')
    .alias('list')
    .description('list the hosts: underlay address, last seen, ready or lapsed (and whether their endpoints are withdrawn here)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { format: string }) => {
      const list = await client().call<NodeView[]>('GET', '/v1/nodes');
      if (o.format === 'json') return printJson(list);
      const now = Date.now();
      process.stdout.write(table(['HOST ID', 'NAME', 'UNDERLAY', 'STATE', 'ENDPOINTS', 'LAST SEEN'], list.map((n) => [
        `${n.id.slice(0, 12)}${n.self ? ' *' : ''}`, n.name || '-', n.underlay || '-',
        n.state === 'lapsed' && n.withdrawn ? 'lapsed, withdrawn' : n.state, String(n.endpoints), lastSeen(n, now),
      ])));
    });
}
