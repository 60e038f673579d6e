/**
 * Where a request's time goes inside berthd: the API server opens a Timing
 * per request, the layers below add named phases to whatever request they
 * run for (found through AsyncLocalStorage, so nothing is threaded through
 * the calls), and the server returns them as a Server-Timing header. Code
 * that runs outside a request (start-up, timers) records into nothing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export class Timing {
  readonly t0 = performance.now();
  /** ms per phase name, summed when a phase happens more than once */
  readonly phases = new Map<string, number>();

  add(name: string, ms: number): void {
    this.phases.set(name, (this.phases.get(name) ?? 0) + ms);
  }

  /** The Server-Timing header value: each phase, then berthd's whole share as "total". */
  header(): string {
    const f = (ms: number) => ms.toFixed(2);
    return [...[...this.phases].map(([k, v]) => `${k};dur=${f(v)}`), `total;dur=${f(performance.now() - this.t0)}`].join(', ');
  }
}

const current = new AsyncLocalStorage<Timing>();

/** Runs @fn with @t as the current request's timing. */
export function withTiming<T>(t: Timing, fn: () => T): T {
  return current.run(t, fn);
}

/** Adds @ms to phase @name of the current request, if any. */
export function phase(name: string, ms: number): void {
  current.getStore()?.add(name, ms);
}

/** Times @fn as phase @name of the current request. */
export async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await fn();
  } finally {
    phase(name, performance.now() - t);
  }
}

/** A lap counter for logs: each call notes the time since the previous one under @name (the request's phases are timed() where the work is). */
export function stopwatch(): ((name: string) => void) & { phases: Record<string, number> } {
  let last = performance.now();
  const phases: Record<string, number> = {};
  const lap = (name: string) => {
    const now = performance.now();
    phases[name] = Math.round(((phases[name] ?? 0) + now - last) * 100) / 100;
    last = now;
  };
  return Object.assign(lap, { phases });
}

/** Parses a Server-Timing header into ms per name (the bench's side). */
export function parseServerTiming(h: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (h ?? '').split(',')) {
    const m = /^\s*([\w.-]+)\s*;\s*dur=([\d.]+)/.exec(part);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
