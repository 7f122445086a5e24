/**
 * Dependency-free SVG charts for reports: a line chart (optionally stepped,
 * log-scaled, with shaded x-ranges) and a grouped bar chart. Each function
 * returns one standalone SVG document (`<svg xmlns=...>...</svg>`) with a
 * title, axes, ticks, axis labels and a legend, so it can be written to a
 * `.svg` file or inlined in Markdown/HTML.
 *
 * Non-finite values are skipped; on a log axis, values <= 0 are skipped too
 * (bars <= 0 are drawn with no height). The output is deterministic for its
 * input (no ids, no randomness), so it can be diffed.
 */

export interface Series {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  dashed?: boolean;
}

/** A shaded x-range, e.g. the window a fault was on. */
export interface Band {
  from: number;
  to: number;
  label: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  bands?: readonly Band[];
  yLog?: boolean;
  width?: number;
  height?: number;
  /** Draw each series as a step function (the value holds until the next point). */
  step?: boolean;
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  groups: ReadonlyArray<{ label: string; bars: ReadonlyArray<{ name: string; value: number }> }>;
  yLog?: boolean;
  width?: number;
  height?: number;
}

/** Okabe–Ito (colour-blind safe), then a few more. */
const palette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442', '#8c564b', '#7f7f7f'];
const bandFill = '#d62728';
const font = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

export function colorAt(index: number): string {
  return palette[index % palette.length] ?? '#000000';
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

/** A coordinate with at most 2 decimals (keeps the output small and stable). */
function n(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** A tick label: compact, no floating-point noise. */
export function formatTick(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  const trim = (x: number, digits: number): string => String(Number(x.toFixed(digits)));
  if (abs >= 1e9) return `${trim(value / 1e9, 2)}G`;
  if (abs >= 1e6) return `${trim(value / 1e6, 2)}M`;
  if (abs >= 1e4) return `${trim(value / 1e3, 1)}k`;
  if (abs >= 1) return trim(value, 2);
  return String(Number(value.toPrecision(3)));
}

interface Scale {
  min: number;
  max: number;
  ticks: number[];
  /** Maps a value in [min, max] to [0, 1]. */
  unit(value: number): number;
}

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nice * mag;
}

function linearScale(lo: number, hi: number, target = 5): Scale {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (hi === lo) [lo, hi] = lo === 0 ? [0, 1] : lo > 0 ? [0, lo * 1.1] : [lo * 1.1, 0];
  const step = niceStep(hi - lo, target);
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; min + i * step <= max + step / 1e6; i++) ticks.push(Number((min + i * step).toPrecision(12)));
  return { min, max, ticks, unit: (v) => (v - min) / (max - min) };
}

function logScale(lo: number, hi: number): Scale {
  if (!(lo > 0) || !Number.isFinite(lo)) lo = 1;
  if (!(hi > 0) || !Number.isFinite(hi)) hi = lo * 10;
  let minExp = Math.floor(Math.log10(lo) + 1e-9);
  let maxExp = Math.ceil(Math.log10(hi) - 1e-9);
  if (maxExp <= minExp) maxExp = minExp + 1;
  if (maxExp - minExp > 12) minExp = maxExp - 12;
  const min = 10 ** minExp;
  const max = 10 ** maxExp;
  const ticks: number[] = [];
  const decades = maxExp - minExp;
  for (let e = minExp; e <= maxExp; e++) {
    ticks.push(Number((10 ** e).toPrecision(12)));
    if (decades <= 2 && e < maxExp) ticks.push(Number((2 * 10 ** e).toPrecision(12)), Number((5 * 10 ** e).toPrecision(12)));
  }
  ticks.sort((a, b) => a - b);
  const span = Math.log10(max) - Math.log10(min);
  return { min, max, ticks, unit: (v) => (Math.log10(v) - Math.log10(min)) / span };
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(width: number, height: number, legendRows: number): Frame {
  const top = 34 + legendRows * 18 + 8;
  return { width, height, left: 64, right: width - 18, top, bottom: height - 46 };
}

/** Legend items laid out in rows under the title. */
function legend(items: ReadonlyArray<{ name: string; color: string; dashed?: boolean; swatch: 'line' | 'box' }>, width: number): { rows: number; svg: string } {
  const parts: string[] = [];
  let x = 64;
  let row = 0;
  for (const item of items) {
    const w = 28 + Math.min(item.name.length, 40) * 6.6 + 16;
    if (x + w > width - 10 && x > 64) {
      row++;
      x = 64;
    }
    const y = 40 + row * 18;
    if (item.swatch === 'line') {
      parts.push(`<line x1="${n(x)}" y1="${n(y - 4)}" x2="${n(x + 22)}" y2="${n(y - 4)}" stroke="${item.color}" stroke-width="2.5"${item.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`);
    } else {
      parts.push(`<rect x="${n(x + 6)}" y="${n(y - 10)}" width="12" height="12" fill="${item.color}"/>`);
    }
    parts.push(`<text x="${n(x + 28)}" y="${n(y)}" font-size="12">${escapeXml(item.name)}</text>`);
    x += w;
  }
  return { rows: items.length === 0 ? 0 : row + 1, svg: parts.join('') };
}

function open(width: number, height: number, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${font} role="img" aria-label="${escapeXml(title)}">` +
    `<title>${escapeXml(title)}</title>` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>` +
    `<text x="${n(width / 2)}" y="20" font-size="15" font-weight="600" text-anchor="middle">${escapeXml(title)}</text>`
  );
}

function yAxis(f: Frame, scale: Scale, yLabel: string): string {
  const parts: string[] = [];
  for (const t of scale.ticks) {
    const y = f.bottom - scale.unit(t) * (f.bottom - f.top);
    parts.push(`<line x1="${f.left}" y1="${n(y)}" x2="${f.right}" y2="${n(y)}" stroke="#e5e5e5" stroke-width="1"/>`);
    parts.push(`<line x1="${f.left - 5}" y1="${n(y)}" x2="${f.left}" y2="${n(y)}" stroke="#333333"/>`);
    parts.push(`<text x="${f.left - 8}" y="${n(y + 4)}" font-size="11" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  }
  const cy = (f.top + f.bottom) / 2;
  parts.push(`<text x="16" y="${n(cy)}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${n(cy)})">${escapeXml(yLabel)}</text>`);
  parts.push(`<line x1="${f.left}" y1="${f.top}" x2="${f.left}" y2="${f.bottom}" stroke="#333333"/>`);
  return parts.join('');
}

/** A line chart of `series` over a numeric x axis; `bands` shade x-ranges (labelled at the top). */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 360;
  const yOk = (y: number): boolean => Number.isFinite(y) && (o.yLog !== true || y > 0);
  const series = o.series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && yOk(y)) }));
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const bands = (o.bands ?? []).filter((b) => Number.isFinite(b.from) && Number.isFinite(b.to));
  if (xs.length === 0) xs.push(...bands.flatMap((b) => [b.from, b.to]));
  const xScale = linearScale(xs.length > 0 ? Math.min(...xs) : 0, xs.length > 0 ? Math.max(...xs) : 1, Math.max(3, Math.floor(width / 110)));
  const yScale = o.yLog === true ? logScale(ys.length > 0 ? Math.min(...ys) : 1, ys.length > 0 ? Math.max(...ys) : 10) : linearScale(Math.min(0, ...ys), ys.length > 0 ? Math.max(0, ...ys) : 1);
  const leg = legend(
    series.map((s, i) => ({ name: s.name, color: colorAt(i), dashed: s.dashed, swatch: 'line' as const })),
    width,
  );
  const f = frame(width, height, leg.rows);
  const px = (x: number): number => f.left + xScale.unit(x) * (f.right - f.left);
  const py = (y: number): number => f.bottom - Math.min(1, Math.max(0, yScale.unit(y))) * (f.bottom - f.top);

  const parts: string[] = [open(width, height, o.title), leg.svg];
  // Bands first, under everything else.
  for (const b of bands) {
    const x1 = px(Math.max(xScale.min, Math.min(b.from, b.to)));
    const x2 = px(Math.min(xScale.max, Math.max(b.from, b.to)));
    if (x2 <= x1) continue;
    parts.push(`<g class="band"><rect x="${n(x1)}" y="${f.top}" width="${n(x2 - x1)}" height="${f.bottom - f.top}" fill="${bandFill}" fill-opacity="0.1"/>`);
    parts.push(`<text x="${n((x1 + x2) / 2)}" y="${f.top + 12}" font-size="11" text-anchor="middle" fill="#8b1a1a">${escapeXml(b.label)}</text></g>`);
  }
  parts.push(yAxis(f, yScale, o.yLabel));
  // X axis.
  parts.push(`<line x1="${f.left}" y1="${f.bottom}" x2="${f.right}" y2="${f.bottom}" stroke="#333333"/>`);
  for (const t of xScale.ticks) {
    const x = px(t);
    parts.push(`<line x1="${n(x)}" y1="${f.bottom}" x2="${n(x)}" y2="${f.bottom + 5}" stroke="#333333"/>`);
    parts.push(`<text x="${n(x)}" y="${f.bottom + 18}" font-size="11" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  parts.push(`<text x="${n((f.left + f.right) / 2)}" y="${height - 10}" font-size="12" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  // Series.
  series.forEach((s, i) => {
    const color = colorAt(i);
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (pts.length === 1) {
      const [[x, y] = [0, 0]] = pts;
      parts.push(`<circle cx="${n(px(x))}" cy="${n(py(y))}" r="3" fill="${color}"/>`);
    } else if (pts.length > 1) {
      const d: string[] = [];
      pts.forEach(([x, y], k) => {
        if (k === 0) d.push(`M${n(px(x))} ${n(py(y))}`);
        else if (o.step === true) d.push(`H${n(px(x))} V${n(py(y))}`);
        else d.push(`L${n(px(x))} ${n(py(y))}`);
      });
      parts.push(`<path d="${d.join(' ')}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"${dash}/>`);
    }
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Grouped bars: one group per x label, one bar per name (same colour for the same name across groups). */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 360;
  const names: string[] = [];
  for (const g of o.groups) for (const b of g.bars) if (!names.includes(b.name)) names.push(b.name);
  const values = o.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => Number.isFinite(v) && (o.yLog !== true || v > 0));
  const yScale = o.yLog === true ? logScale(values.length > 0 ? Math.min(...values) : 1, values.length > 0 ? Math.max(...values) : 10) : linearScale(Math.min(0, ...values), Math.max(0, ...values));
  const leg = legend(
    names.map((name, i) => ({ name, color: colorAt(i), swatch: 'box' as const })),
    width,
  );
  const f = frame(width, height, leg.rows);
  const py = (y: number): number => f.bottom - Math.min(1, Math.max(0, yScale.unit(y))) * (f.bottom - f.top);
  const base = o.yLog === true ? f.bottom : py(Math.max(yScale.min, Math.min(yScale.max, 0)));

  const parts: string[] = [open(width, height, o.title), leg.svg, yAxis(f, yScale, o.yLabel)];
  parts.push(`<line x1="${f.left}" y1="${n(base)}" x2="${f.right}" y2="${n(base)}" stroke="#333333"/>`);
  const groupWidth = (f.right - f.left) / Math.max(1, o.groups.length);
  o.groups.forEach((g, gi) => {
    const x0 = f.left + gi * groupWidth;
    const inner = groupWidth * 0.8;
    const barWidth = inner / Math.max(1, g.bars.length);
    parts.push(`<g class="group" data-label="${escapeXml(g.label)}">`);
    g.bars.forEach((b, bi) => {
      const color = colorAt(names.indexOf(b.name));
      const x = x0 + groupWidth * 0.1 + bi * barWidth;
      const drawable = Number.isFinite(b.value) && (o.yLog !== true || b.value > 0);
      const y = drawable ? py(b.value) : base;
      const top = Math.min(y, base);
      const h = Math.abs(base - y);
      parts.push(`<rect x="${n(x + 1)}" y="${n(top)}" width="${n(Math.max(1, barWidth - 2))}" height="${n(h)}" fill="${color}"><title>${escapeXml(`${g.label} ${b.name}: ${formatTick(b.value)}`)}</title></rect>`);
      if (barWidth >= 22) parts.push(`<text x="${n(x + barWidth / 2)}" y="${n(top - 4)}" font-size="10" text-anchor="middle">${escapeXml(Number.isFinite(b.value) ? formatTick(b.value) : 'n/a')}</text>`);
    });
    parts.push(`<text x="${n(x0 + groupWidth / 2)}" y="${f.bottom + 18}" font-size="11" text-anchor="middle">${escapeXml(g.label)}</text>`);
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('\n');
}
