/** What a backend's last apply did and how long it took: timed by phase while it runs, shown by status(). Both backends use it. */
import type { LastApplyStatus } from './datapath.js';
import { phase } from '../timing.js';

export interface LastApply {
  at: string;
  ms: number;
  warnings: string[];
  /** kernel objects written (bpf: map entries and attachments) */
  changed?: number;
  /** ms per phase, when the backend marks them */
  phase?: Record<string, number>;
  /** optional sysctls this kernel lacks (br_netfilter) */
  missing: string[];
}

/** Times one apply: mark() ends a phase, done() makes the record. */
export class ApplyTimer {
  private readonly t0 = performance.now();
  private tp = this.t0;
  private readonly phase: Record<string, number> = {};

  /** The next phase starts here; the time before it is in no phase (only in the total). */
  lap(): void {
    this.tp = performance.now();
  }

  mark(name: string): void {
    const now = performance.now();
    this.phase[name] = Math.round((now - this.tp) * 100) / 100;
    // within the request that caused the apply, as datapath.NAME (Server-Timing)
    phase(`datapath.${name}`, now - this.tp);
    this.tp = now;
  }

  done(r: { warnings: string[]; missing?: string[]; changed?: number }): LastApply {
    const ms = Math.round((performance.now() - this.t0) * 10) / 10;
    return {
      at: new Date().toISOString(), ms, warnings: r.warnings, missing: r.missing ?? [],
      ...(r.changed !== undefined ? { changed: r.changed } : {}),
      ...(Object.keys(this.phase).length ? { phase: this.phase } : {}),
    };
  }
}

/** The status() fields of @last (none yet: lastApply null). */
export function lastApplyStatus(last: LastApply | undefined): LastApplyStatus {
  if (!last) return { lastApply: null };
  return { lastApply: last.at, lastApplyMs: last.ms, ...(last.phase ? { lastApplyPhases: last.phase } : {}), warnings: last.warnings };
}
