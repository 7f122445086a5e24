import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barChart, escapeXml, formatTick, lineChart } from './svg.js';

/**
 * A strict-enough XML well-formedness check for what svg.ts writes: one root,
 * every tag closed in order, attributes quoted, no raw `&` or `<` in text.
 */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), 'root is an svg element with its namespace');
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let roots = 0;
  while (re.lastIndex < svg.length && (m = re.exec(svg)) !== null) {
    const [, closing, name, , selfClosing, text] = m;
    if (text !== undefined) {
      assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(text), `raw & in text: ${text}`);
      if (stack.length === 0) assert.match(text, /^\s*$/, 'text outside the root');
      continue;
    }
    if (closing === '/') assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else if (selfClosing !== '/') {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  assert.equal(re.lastIndex, svg.length, `unparsable at ${svg.slice(re.lastIndex, re.lastIndex + 60)}`);
  assert.deepEqual(stack, [], 'every element closed');
  assert.equal(roots, 1, 'one root element');
}

const count = (svg: string, re: RegExp): number => (svg.match(re) ?? []).length;

describe('svg charts', () => {
  it('a line chart: well-formed, a path per series with a vertex per point, a legend entry each, bands, axes and labels', () => {
    const svg = lineChart({
      title: 'Throughput <ok & failed>',
      xLabel: 'time (s)',
      yLabel: 'req/s',
      series: [
        { name: 'offered', points: [[0, 50], [1, 50], [2, 50], [3, 50]], dashed: true },
        { name: 'ok', points: [[0, 49], [1, 20], [2, 21], [3, 48]] },
        { name: 'failed "x"', points: [[0, 1], [1, 30], [2, 29], [3, 2]] },
      ],
      bands: [{ from: 1, to: 2, label: 'payments-down' }],
    });
    assertWellFormed(svg);
    assert.equal(count(svg, /<g class="series"/g), 3);
    const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(paths.length, 3);
    for (const d of paths) assert.equal(count(d, /[ML]/g), 4, d);
    assert.equal(count(svg, /stroke-dasharray/g), 2, 'the dashed series and its legend swatch');
    assert.equal(count(svg, /<g class="band">/g), 1);
    assert.ok(svg.includes('payments-down'));
    assert.ok(svg.includes('<title>Throughput &lt;ok &amp; failed&gt;</title>'));
    assert.ok(svg.includes('failed &quot;x&quot;'));
    assert.ok(svg.includes('>time (s)<') && svg.includes('>req/s<'));
    assert.ok(count(svg, /text-anchor="end"/g) >= 3, 'y tick labels');
  });

  it('step charts draw horizontal-then-vertical segments; log scales skip non-positive values and tick at decades', () => {
    const step = lineChart({ title: 'b', xLabel: 'x', yLabel: 'y', step: true, series: [{ name: 'breaker', points: [[0, 0], [5, 1], [9, 0]] }] });
    assertWellFormed(step);
    const d = /<path d="([^"]+)"/.exec(step)?.[1] ?? '';
    assert.equal(count(d, /H/g), 2);
    assert.equal(count(d, /V/g), 2);

    const log = lineChart({ title: 'lat', xLabel: 'x', yLabel: 'ms', yLog: true, series: [{ name: 'p99', points: [[0, 0], [1, 3], [2, 40], [3, 2500], [4, Number.NaN]] }] });
    assertWellFormed(log);
    const dl = /<path d="([^"]+)"/.exec(log)?.[1] ?? '';
    assert.equal(count(dl, /[ML]/g), 3, 'zero and NaN are left out');
    for (const tick of ['>1<', '>10<', '>100<', '>1000<', '>10k<']) assert.ok(log.includes(tick), tick);
  });

  it('degenerate input still makes a valid chart (no series, one point, constant values)', () => {
    assertWellFormed(lineChart({ title: 'empty', xLabel: 'x', yLabel: 'y', series: [] }));
    const one = lineChart({ title: 'one', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[3, 7]] }] });
    assertWellFormed(one);
    assert.equal(count(one, /<circle/g), 1);
    assertWellFormed(lineChart({ title: 'flat', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[0, 5], [1, 5]] }] }));
    assert.ok(!/NaN|Infinity/.test(lineChart({ title: 'flat', xLabel: 'x', yLabel: 'y', yLog: true, series: [{ name: 'a', points: [[0, 0]] }] })));
  });

  it('a bar chart: a rect per bar, a legend entry per bar name, a label per group', () => {
    const svg = barChart({
      title: 'Attempts per request',
      yLabel: 'calls',
      groups: [
        { label: 'baseline', bars: [{ name: 'payments', value: 1 }, { name: 'inventory', value: 1 }] },
        { label: 'outage', bars: [{ name: 'payments', value: 2.7 }, { name: 'inventory', value: 1 }] },
        { label: 'recovery', bars: [{ name: 'payments', value: 1.1 }, { name: 'inventory', value: Number.NaN }] },
      ],
    });
    assertWellFormed(svg);
    assert.equal(count(svg, /<g class="group"/g), 3);
    assert.equal(count(svg, /<rect [^>]*><title>/g), 6);
    assert.equal(count(svg, /<rect x="[\d.]+" y="[\d.]+" width="12" height="12"/g), 2, 'legend swatches');
    assert.ok(svg.includes('>outage<'));
    assertWellFormed(barChart({ title: 'log', yLabel: 'y', yLog: true, groups: [{ label: 'a', bars: [{ name: 'x', value: 0 }, { name: 'y', value: 1000 }] }] }));
  });

  it('helpers: escaping and tick labels', () => {
    assert.equal(escapeXml(`<a & 'b'>`), '&lt;a &amp; &apos;b&apos;&gt;');
    assert.deepEqual([0, 0.25, 1.5, 12_000, 2_500_000, 0.001].map(formatTick), ['0', '0.25', '1.5', '12k', '2.5M', '0.001']);
  });
});
