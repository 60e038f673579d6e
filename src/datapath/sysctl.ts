/**
 * Sysctls a datapath needs, shared by both backends: the type, setting what
 * differs, and noticing what was reset outside berth. All in berthd's own
 * network namespace. The intent (desired.ts) names the forwarding ones every
 * backend needs; each backend adds those of its own mechanism (BPF_SYSCTLS
 * in bpf/index.ts, iptables/sysctl.ts).
 *
 *  net.ipv4.ip_forward = 1
 *      routing between the bridges and the uplink (Docker sets it too).
 *  net.ipv6.conf.all.forwarding = 1  (only while a bridged network is dual-stack)
 *      the same for IPv6. An interface with accept_ra=1 then ignores router
 *      advertisements: an uplink configured by SLAAC needs accept_ra=2.
 *
 * None is reverted on teardown (Docker does not either): other software on
 * the host may rely on forwarding, and a bridge's setting goes with it.
 */
import type { Logger } from 'pino';
import { nl } from '../netlink/index.js';

export interface Sysctl {
  key: string;
  value: string;
  /** false: the key may not exist here (a module not loaded); reported, not fatal */
  required: boolean;
}

/** The forwarding sysctls of an intent; @ipv6: some network the datapath forwards for is dual-stack. */
export function forwardingSysctls(ipv6: boolean): Sysctl[] {
  return [
    { key: 'net.ipv4.ip_forward', value: '1', required: true },
    ...(ipv6 ? [{ key: 'net.ipv6.conf.all.forwarding', value: '1', required: true }] : []),
  ];
}

async function read(key: string): Promise<string | undefined> {
  try {
    return (await nl.sysctlRead({ key })).trim();
  } catch {
    return undefined;
  }
}

/** Sets what differs; returns what was changed and the optional keys this kernel lacks. */
export async function ensureSysctls(want: Sysctl[]): Promise<{ changed: string[]; missing: string[] }> {
  const changed: string[] = [];
  const missing: string[] = [];
  for (const s of want) {
    const cur = await read(s.key);
    if (cur === s.value) continue;
    if (cur === undefined && !s.required) {
      missing.push(s.key);
      continue;
    }
    await nl.sysctlWrite({ key: s.key, value: s.value });
    changed.push(`${s.key}=${s.value}`);
  }
  return { changed, missing };
}

/** Keys that no longer hold their value (someone reset them). */
export async function sysctlDrift(want: Sysctl[]): Promise<string[]> {
  const out: string[] = [];
  for (const s of want) {
    const cur = await read(s.key);
    if (cur !== s.value && !(cur === undefined && !s.required)) out.push(`${s.key}=${cur ?? '(absent)'}`);
  }
  return out;
}

/**
 * The sysctls one backend keeps: what it last asked for (drifted() checks
 * those). @skipUnchanged: an apply asking for the same set as the last one
 * reads nothing (the drift check notices resets); otherwise every apply reads
 * and sets them.
 */
export class SysctlKeeper {
  private want: Sysctl[] = [];
  /** the set last ensured, as JSON; undefined: ensure again */
  private ensured: string | undefined;

  constructor(private readonly opts: { skipUnchanged: boolean }) {}

  async ensure(want: Sysctl[]): Promise<{ changed: string[]; missing: string[] }> {
    this.want = want;
    const key = JSON.stringify(want);
    if (this.opts.skipUnchanged && key === this.ensured) return { changed: [], missing: [] };
    const r = await ensureSysctls(want);
    this.ensured = key;
    return r;
  }

  /** Whether some were reset outside berth (said in the log); the next ensure() sets them again. */
  async drifted(log: Logger): Promise<boolean> {
    const reset = await sysctlDrift(this.want);
    if (!reset.length) return false;
    log.warn({ sysctls: reset }, 'sysctls changed outside berth');
    this.ensured = undefined;
    return true;
  }

  /** The next ensure() reads and sets everything again. */
  forget(): void {
    this.ensured = undefined;
  }

  /** key -> value of what was last asked for */
  values(): Record<string, string> {
    return Object.fromEntries(this.want.map((s) => [s.key, s.value]));
  }
}
