/** The benchmark's command line: scenarios, systems and the flags that size the runs. */
import { projectPath } from '../../src/paths.js';

export const SCENARIOS = ['c2c', 'published', 'masquerade', 'hairpin', 'localhost', 'attach', 'concurrent-attach', 'publish-scale', 'overlay', 'drop-flood', 'ports-10k', 'policy-scale'];
export const SYSTEMS = ['limit', 'iptables', 'nftables', 'bpf', 'docker', 'docker-noproxy', 'podman-netavark', 'podman-berth'];
export const BERTH_DATAPATHS = ['iptables', 'nftables', 'bpf'];

export interface Opts {
  quick: boolean;
  runs: number;
  seconds: number;
  attach: number;
  concurrent: number;
  scaleRuns: number;
  out: string;
  only: Set<string> | null;
  systems: string[];
  dockerPorts: number;
  manyPorts: number;
  policyPairs: number;
  /** --reference: write the committed reference run (bench/reference/, fixed names) instead of bench/results/ */
  reference: boolean;
  /** --cpu-prof DIR: berthd runs under node's --cpu-prof, its profile written to DIR when it stops */
  cpuProf?: string;
}

export function parseArgs(argv: string[]): Opts {
  const quick = argv.includes('--quick');
  const reference = argv.includes('--reference');
  const valued = ['--runs', '--seconds', '--out', '--only', '--systems', '--docker-ports', '--many-ports', '--policy-pairs', '--cpu-prof'];
  const get = (name: string, max = 1000): number | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${name} needs an integer 1..${max}, got '${argv[i + 1]}'`);
    return v;
  };
  for (const [i, a] of argv.entries()) {
    if (valued.includes(argv[i - 1] ?? '')) continue;
    if (a.startsWith('--') && ![...valued, '--quick', '--reference'].includes(a)) throw new Error(`unknown option '${a}' (valid: --quick, --reference, --runs N, --seconds S, --out DIR, --only ${SCENARIOS.join(',')}, --systems ${SYSTEMS.join(',')}, --docker-ports N, --many-ports N, --policy-pairs N, --cpu-prof DIR)`);
  }
  const list = (name: string, valid: string[]): string[] | null => {
    const i = argv.indexOf(name);
    if (i < 0) return null;
    const xs = (argv[i + 1] ?? '').split(',').filter(Boolean);
    for (const x of xs) if (!valid.includes(x)) throw new Error(`${name}: unknown '${x}' (valid: ${valid.join(', ')})`);
    return xs;
  };
  const oi = argv.indexOf('--out');
  if (reference && oi >= 0) throw new Error(`--reference writes to bench/reference/: it takes no --out (got '${argv[oi + 1]}')`);
  const only = list('--only', SCENARIOS);
  const pi = argv.indexOf('--cpu-prof');
  const cpuProf = pi >= 0 ? argv[pi + 1] : undefined;
  if (pi >= 0 && (!cpuProf || cpuProf.startsWith('--'))) throw new Error(`--cpu-prof needs a directory, got '${cpuProf ?? ''}'`);
  return {
    ...(cpuProf ? { cpuProf } : {}),
    quick,
    runs: get('--runs') ?? (quick ? 3 : 5),
    seconds: get('--seconds') ?? (quick ? 2 : 10),
    attach: quick ? 30 : 200,
    concurrent: quick ? 20 : 100,
    scaleRuns: quick ? 1 : 3,
    out: oi >= 0 ? argv[oi + 1]! : projectPath('bench', reference ? 'reference' : 'results'),
    reference,
    only: only ? new Set(only) : null,
    systems: list('--systems', SYSTEMS) ?? ['limit', 'iptables', 'nftables', 'bpf', 'docker', 'docker-noproxy'],
    dockerPorts: get('--docker-ports', 1000) ?? (quick ? 200 : 1000),
    manyPorts: get('--many-ports', 53000) ?? 10000,
    policyPairs: get('--policy-pairs', 10000) ?? 10000,
  };
}
