/**
 * A bar chart as a standalone SVG: one bar per system at its median, a
 * whisker from min to max, the value and the ratio to the limit as labels.
 * No chart library: plain text, escaped.
 */
export interface Bar {
  label: string;
  median: number;
  min: number;
  max: number;
  /** ratio to the limit, shown under the value */
  ratio?: number | null;
  /** a bar that was not measured: drawn as a note, no bar */
  note?: string;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** @label in lines of at most @width characters, broken after ", " or before " (" where it can be. */
function wrap(label: string, width = 22): string[] {
  const parts = label.split(/(?<=, )|(?= \()/);
  const lines: string[] = [];
  for (const p of parts) {
    const last = lines[lines.length - 1];
    if (last !== undefined && (last + p).length <= width) lines[lines.length - 1] = last + p;
    else lines.push(p.trim());
  }
  return lines.slice(0, 4);
}

export function barChart(title: string, unit: string, bars: Bar[], opts: { higherIsBetter?: boolean; ratioLabel?: string } = {}): string {
  const W = Math.max(760, 160 + bars.length * 150);
  const H = 400;
  const top = 60;
  const bottom = 290;
  const left = 70;
  const measured = bars.filter((b) => !b.note && Number.isFinite(b.max));
  const maxV = Math.max(1e-9, ...measured.map((b) => b.max)) * 1.1;
  const y = (v: number) => bottom - (v / maxV) * (bottom - top);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  const hint = opts.higherIsBetter === undefined ? '' : opts.higherIsBetter ? ' (higher is better)' : ' (lower is better)';
  out.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${escapeXml(`${unit}${hint}; bar = median, whisker = min..max`)}</text>`);
  out.push(`<line x1="${left}" y1="${bottom}" x2="${W - 20}" y2="${bottom}" stroke="#333"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = (maxV / 4) * i;
    out.push(`<line x1="${left - 4}" y1="${y(v).toFixed(1)}" x2="${W - 20}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${escapeXml(fmt(v))}</text>`);
  }
  bars.forEach((b, i) => {
    const cx = left + 40 + i * 150 + 50;
    if (b.note || !Number.isFinite(b.median)) {
      out.push(`<text x="${cx}" y="${bottom - 20}" text-anchor="middle" fill="#999" font-size="10">${escapeXml(b.note ?? 'not measured')}</text>`);
    } else {
      const color = /limit/.test(b.label) ? '#8a8a8a' : /^docker/.test(b.label) ? '#c0504d' : '#2a6fb0';
      out.push(`<rect x="${cx - 35}" y="${y(b.median).toFixed(1)}" width="70" height="${(bottom - y(b.median)).toFixed(1)}" fill="${color}"/>`);
      out.push(`<line x1="${cx}" y1="${y(b.min).toFixed(1)}" x2="${cx}" y2="${y(b.max).toFixed(1)}" stroke="#000" stroke-width="1.5"/>`);
      out.push(`<line x1="${cx - 10}" y1="${y(b.min).toFixed(1)}" x2="${cx + 10}" y2="${y(b.min).toFixed(1)}" stroke="#000"/>`);
      out.push(`<line x1="${cx - 10}" y1="${y(b.max).toFixed(1)}" x2="${cx + 10}" y2="${y(b.max).toFixed(1)}" stroke="#000"/>`);
      out.push(`<text x="${cx}" y="${(y(b.max) - 6).toFixed(1)}" text-anchor="middle">${escapeXml(fmt(b.median))}</text>`);
      if (b.ratio !== undefined && b.ratio !== null && Number.isFinite(b.ratio)) {
        out.push(`<text x="${cx}" y="${bottom + 16}" text-anchor="middle" fill="#555">${escapeXml(`${b.ratio.toFixed(2)}× ${opts.ratioLabel ?? 'limit'}`)}</text>`);
      }
    }
    wrap(b.label).forEach((line, k) => out.push(`<text x="${cx}" y="${bottom + 34 + k * 14}" text-anchor="middle" font-size="11">${escapeXml(line)}</text>`));
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
