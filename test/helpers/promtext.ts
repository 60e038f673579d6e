/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for
 * tests: every line must be a HELP, a TYPE or a sample; every sample must
 * belong to a family declared by TYPE before it (histogram and summary
 * samples by their _bucket/_sum/_count suffixes); names, label sets and
 * values must be well formed; a family is declared once; histogram buckets
 * are cumulative and end at le="+Inf" equal to _count. Anything else throws,
 * naming the line.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: number): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: '${s}' is not a sample value`);
  return Number(s);
}

/** Parses `{a="x",b="y\"z"}` starting at @i (at '{'); returns the labels and the index after '}'. */
function parseLabels(text: string, i: number, line: number): [Record<string, string>, number] {
  const out: Record<string, string> = {};
  i++;
  for (;;) {
    if (text[i] === '}') return [out, i + 1];
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without '='`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`line ${line}: bad label name '${name}'`);
    if (name in out) throw new Error(`line ${line}: label '${name}' twice`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label ${name}'s value is not quoted`);
    let j = eq + 2;
    let v = '';
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const e = text[++j];
        if (e === 'n') v += '\n';
        else if (e === '\\' || e === '"') v += e;
        else throw new Error(`line ${line}: bad escape '\\${e}' in label ${name}`);
      } else v += text[j];
    }
    if (j >= text.length) throw new Error(`line ${line}: unterminated value of label ${name}`);
    out[name] = v;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected ',' or '}' after label ${name}`);
  }
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const typed = new Set<string>();
  const owner = (sample: string): Family | undefined => {
    const f = families.get(sample);
    if (f) return f;
    for (const suffix of ['_bucket', '_sum', '_count']) {
      if (!sample.endsWith(suffix)) continue;
      const g = families.get(sample.slice(0, -suffix.length));
      if (g && (g.type === 'histogram' || (g.type === 'summary' && suffix !== '_bucket'))) return g;
    }
    return undefined;
  };
  if (text && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  text.split('\n').forEach((raw, idx) => {
    const line = idx + 1;
    if (raw === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kw, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name '${name}'`);
      const f = families.get(name) ?? { name, type: 'untyped' as const, samples: [] };
      if (kw === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${line}: unknown type '${rest}'`);
        if (typed.has(name)) throw new Error(`line ${line}: TYPE of ${name} given twice`);
        f.type = rest as Family['type'];
        typed.add(name);
      } else {
        if (f.help !== undefined) throw new Error(`line ${line}: HELP of ${name} given twice`);
        f.help = rest;
      }
      families.set(name, f);
      return;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`line ${line}: not a sample: '${raw}'`);
    const name = raw.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name '${name}'`);
    let [labels, i] = raw[nameEnd] === '{' ? parseLabels(raw, nameEnd, line) : [{}, nameEnd];
    if (raw[i] !== ' ') throw new Error(`line ${line}: no space before the value`);
    const parts = raw.slice(i + 1).split(' ');
    if (parts.length > 2 || (parts[1] !== undefined && !/^-?\d+$/.test(parts[1]))) throw new Error(`line ${line}: trailing garbage '${raw.slice(i + 1)}'`);
    const value = parseValue(parts[0]!, line);
    const f = owner(name);
    if (!f || !typed.has(f.name)) throw new Error(`line ${line}: sample ${name} has no TYPE before it`);
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`line ${line}: counter ${name} is ${value}`);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of f.samples.filter((x) => x.name === `${f.name}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      for (let k = 1; k < buckets.length; k++) if (buckets[k]!.value < buckets[k - 1]!.value) throw new Error(`${f.name}${key}: buckets not cumulative`);
      const last = buckets[buckets.length - 1]!;
      const count = f.samples.find((x) => x.name === `${f.name}_count` && JSON.stringify(x.labels) === key);
      if (last.labels.le !== '+Inf' || !count || count.value !== last.value) throw new Error(`${f.name}${key}: the +Inf bucket is not last or does not equal _count`);
    }
  }
  return families;
}

/** The value of @name with exactly @labels (undefined when absent). */
export function sampleValue(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of fams.values()) {
    const s = f.samples.find((x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
    if (s) return s.value;
  }
  return undefined;
}
