/** Small statistics over raw samples: median, min, max, percentiles. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function percentile(samples: number[], p: number): number {
  if (!samples.length) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  // nearest-rank
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

export function median(samples: number[]): number {
  if (!samples.length) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(samples: number[]): Summary {
  return { median: median(samples), min: samples.length ? Math.min(...samples) : NaN, max: samples.length ? Math.max(...samples) : NaN, n: samples.length };
}
