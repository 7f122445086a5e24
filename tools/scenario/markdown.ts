/**
 * Writes a scenario report to a directory: `report.json` (everything),
 * `report.md` (tables), and the SVG charts it links — throughput with the
 * fault windows shaded, latency (log scale), breaker states, SLO budget, and
 * attempts per request at each hop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatDuration } from './scenario.js';
import type { PerPhase, ScenarioReport } from './report.js';
import { barChart, lineChart, type Band, type Series } from './svg.js';

export interface Chart {
  file: string;
  title: string;
  svg: string;
}

const s = (ms: number): number => Math.round(ms) / 1000;
const pct = (f: number): string => `${(Math.round(f * 10_000) / 100).toString()} %`;
const num = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : String(Number(n.toFixed(digits))));
const STATE_NAMES = ['closed', 'open', 'half-open', 'isolated'];

export function bands(report: ScenarioReport): Band[] {
  return report.faultWindows.map((w) => ({ from: s(w.fromMs), to: s(w.toMs), label: w.faults.join(', ') }));
}

/** The report's charts (a breaker chart only when a breaker left closed, an SLO chart only with SLOs). */
export function charts(report: ScenarioReport): Chart[] {
  const out: Chart[] = [];
  const b = bands(report);
  const step = report.scenario.intervalMs / 1000;
  const tl = report.timeline;
  out.push({
    file: 'throughput.svg',
    title: 'Throughput',
    svg: lineChart({
      title: `${report.scenario.name}: throughput`,
      xLabel: 'time (s)',
      yLabel: 'requests per second',
      bands: b,
      series: [
        { name: 'offered', points: tl.map((p) => [s(p.tMs) + step / 2, p.offered] as const), dashed: true },
        { name: 'ok (goodput)', points: tl.map((p) => [s(p.tMs) + step / 2, p.ok] as const) },
        { name: 'failed', points: tl.map((p) => [s(p.tMs) + step / 2, p.failed] as const) },
      ],
    }),
  });
  const answered = tl.filter((p) => p.ok + p.failed > 0);
  out.push({
    file: 'latency.svg',
    title: 'Latency',
    svg: lineChart({
      title: `${report.scenario.name}: latency (from intended start)`,
      xLabel: 'time (s)',
      yLabel: 'ms (log)',
      yLog: true,
      bands: b,
      series: [
        { name: 'p50', points: answered.map((p) => [s(p.tMs) + step / 2, p.p50] as const) },
        { name: 'p99', points: answered.map((p) => [s(p.tMs) + step / 2, p.p99] as const) },
      ],
    }),
  });
  const moved = report.breakers.filter((br) => br.leftClosed);
  if (moved.length > 0) {
    out.push({
      file: 'breakers.svg',
      title: 'Circuit breakers',
      svg: lineChart({
        title: `${report.scenario.name}: breaker state (0 closed, 1 open, 2 half-open, 3 isolated)`,
        xLabel: 'time (s)',
        yLabel: 'state',
        step: true,
        bands: b,
        series: moved.map((br): Series => ({ name: br.policy, points: br.timeline.map(([t, v]) => [s(t), v] as const) })),
      }),
    });
  }
  if (report.slos.some((x) => x.budgetTimeline.length > 0)) {
    out.push({
      file: 'slo-budget.svg',
      title: 'SLO error budget',
      svg: lineChart({
        title: `${report.scenario.name}: error budget left`,
        xLabel: 'time (s)',
        yLabel: 'budget left (%)',
        bands: b,
        series: report.slos.map((x): Series => ({ name: x.name, points: x.budgetTimeline.map(([t, v]) => [s(t), v * 100] as const) })),
      }),
    });
  }
  const hopRows = report.hops.length > 0 ? report.hops.map((h) => ({ name: h.name, values: h.perRequest })) : [];
  if (hopRows.length > 0) {
    out.push({
      file: 'attempts.svg',
      title: 'Attempts per request at each hop',
      svg: barChart({
        title: `${report.scenario.name}: attempts per request at each hop`,
        yLabel: 'calls per request',
        groups: report.phases.map((p, i) => ({ label: p.name, bars: hopRows.map((h) => ({ name: h.name, value: h.values[i] ?? Number.NaN })) })),
      }),
    });
  }
  return out;
}

function table(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : '---'));
  return [`| ${header.join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function perPhaseTable(report: ScenarioReport, title: string, rows: readonly PerPhase[], per?: (row: PerPhase, i: number) => string): string {
  if (rows.length === 0) return '';
  return [
    `### ${title}`,
    '',
    table(
      ['', ...report.phases.map((p) => p.name)],
      rows.map((r) => [`\`${r.name}\``, ...r.values.map((v, i) => (per === undefined ? String(v) : per(r, i)))]),
    ),
    '',
  ].join('\n');
}

export function renderMarkdown(report: ScenarioReport, chartList: readonly Chart[]): string {
  const lines: string[] = [];
  const r = report;
  lines.push(`# Scenario \`${r.scenario.name}\``, '');
  if (r.scenario.description !== '') lines.push(r.scenario.description, '');
  lines.push(`Target ${r.target}, started ${r.startedAt}, ${s(r.durationMs)} s; file \`${r.scenario.file}\`, seed ${r.scenario.seed}, buckets of ${formatDuration(r.scenario.intervalMs)}.`, '');
  lines.push('## Phases', '');
  lines.push(
    table(
      ['phase', 'start (s)', 'length (s)', 'faults', 'offered/s', 'goodput/s', 'error rate', 'p50 ms', 'p95 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'statuses'],
      [...r.phases, r.total].map((p, i) => [
        i === r.phases.length ? '**all**' : p.name,
        i === r.phases.length ? '' : num(s(p.startMs)),
        num(s(p.durationMs)),
        p.faults.join(', ') || '–',
        num(p.offeredRate, 1),
        num(p.goodput, 1),
        pct(p.errorRate),
        num(p.latency.p50),
        num(p.latency.p95),
        num(p.latency.p99),
        num(p.latency.p999),
        num(p.latency.max),
        Object.entries(p.statuses)
          .map(([k, v]) => `${k}: ${v}`)
          .concat(p.dropped > 0 ? [`dropped: ${p.dropped}`] : [], p.timedOut > 0 ? [`timed out: ${p.timedOut}`] : [], Object.entries(p.networkErrors).map(([k, v]) => `${k}: ${v}`))
          .join(', '),
      ]),
      ['l', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
    '',
  );
  const kinds = [...new Set(r.phases.flatMap((p) => Object.keys(p.byKind)))];
  if (kinds.length > 1) {
    lines.push('By request kind (ok / sent, p99 ms):', '');
    lines.push(table(['kind', ...r.phases.map((p) => p.name)], kinds.map((k) => [k, ...r.phases.map((p) => (p.byKind[k] === undefined ? '–' : `${p.byKind[k].ok}/${p.byKind[k].sent}, ${num(p.byKind[k].p99)}`))])), '');
  }

  lines.push('## Time to recover', '');
  const rec = r.recovery;
  if (rec.faultEndMs === null) lines.push(`Not applicable: ${rec.note}.`, '');
  else {
    lines.push(
      rec.recoveredAfterMs === null ? `**Not recovered** — ${rec.note}.` : `**${s(rec.recoveredAfterMs)} s** after the last fault window ended (at ${num(s(rec.faultEndMs))} s).`,
      '',
      rec.baseline === null
        ? 'No baseline to compare with.'
        : `Baseline (${rec.baseline.phases.join(', ')}, ${rec.baseline.buckets} buckets): goodput ${rec.baseline.goodput}/s, error rate ${pct(rec.baseline.errorRate)}. A healthy bucket: goodput ≥ ${rec.thresholds.goodputRatio * 100} % of it and error rate ≤ baseline + ${rec.thresholds.errorRateSlack * 100} pt; recovered at the first of ${rec.thresholds.buckets} consecutive healthy buckets.`,
      '',
    );
  }

  for (const c of chartList) lines.push(`![${c.title}](${c.file})`, '');

  lines.push('## Attempts per request at each hop', '');
  if (r.hops.length > 0) {
    lines.push(
      table(
        ['hop', 'from', 'to', ...r.phases.map((p) => p.name)],
        r.hops.map((h) => [h.name, `\`${h.from}\``, `\`${h.to}\``, ...h.perRequest.map((v, i) => `${num(v, 3)} (${h.toCalls[i] ?? 0}/${h.fromCalls[i] ?? 0})`)]),
        ['l', 'l', 'l'],
      ),
      '',
    );
  } else lines.push('No hops declared in the scenario (`hops:`); the tables below give every route per user request.', '');
  const users = r.userRequests;
  const perUser = (row: PerPhase, i: number): string => `${row.values[i] ?? 0} (${(users[i] ?? 0) > 0 ? num((row.values[i] ?? 0) / (users[i] ?? 1), 3) : '–'}/req)`;
  lines.push(`User requests sent per phase: ${r.phases.map((p, i) => `${p.name} ${users[i] ?? 0}`).join(', ')}.`, '');
  lines.push(perPhaseTable(r, 'Served requests by route (count, per user request)', r.routes, perUser));
  lines.push(perPhaseTable(r, 'Outgoing calls by dependency (count, per user request)', r.dependencies, perUser));
  lines.push(perPhaseTable(r, 'Retries by policy', r.retries));
  lines.push(perPhaseTable(r, 'Retry give-ups by policy', r.giveUps));
  lines.push(perPhaseTable(r, 'Sagas finished (type, outcome)', r.sagas));

  lines.push('## Circuit breakers', '');
  const moved = r.breakers.filter((b) => b.leftClosed);
  if (moved.length === 0) lines.push(r.breakers.length === 0 ? 'No breaker changed state (a breaker shows in `/metrics` from its first transition).' : `${r.breakers.length} breakers, all closed throughout.`, '');
  else {
    lines.push(
      table(
        ['policy', ...r.phases.map((p) => `${p.name}: transitions / rejections`), 'sampled changes (s: from → to)'],
        moved.map((b) => [
          `\`${b.policy}\``,
          ...r.phases.map((_, i) => `${b.transitions[i] ?? 0} / ${b.rejections[i] ?? 0}`),
          b.changes.map((c) => `${num(s(c.atMs), 1)}: ${STATE_NAMES[c.from] ?? c.from} → ${STATE_NAMES[c.to] ?? c.to}`).join('; ') || '–',
        ]),
        ['l', ...r.phases.map(() => 'r' as const), 'l'],
      ),
      '',
      'Transitions and rejections are the process’s counters; the changes are what the once-per-interval samples saw (a quick half-open probe may fall between two).',
      '',
    );
    const closed = r.breakers.length - moved.length;
    if (closed > 0) lines.push(`${closed} other breakers stayed closed.`, '');
  }

  lines.push('## SLOs', '');
  if (r.slos.length === 0) lines.push('No `/slo` was sampled.', '');
  for (const slo of r.slos) {
    lines.push(`### \`${slo.name}\` (objective ${pct(slo.objective)})`, '');
    lines.push(
      table(
        ['phase', 'events', 'bad', 'burn rate in phase', 'budget left at end', 'burn 5m at end', 'burn 1h at end'],
        slo.phases.map((p, i) => [r.phases[i]?.name ?? String(i), String(p.events), String(p.bad), num(p.burnRate), p.remainingAtEnd === null ? '–' : pct(p.remainingAtEnd), num(p.burn5mAtEnd), num(p.burn1hAtEnd)]),
      ),
      '',
      `Budget spent during the run: ${slo.budgetSpent === null ? '–' : pct(slo.budgetSpent)}. Alerts: ${
        slo.alerts.length === 0 ? 'none' : slo.alerts.map((a) => `${a.severity} fired at ${num(s(a.firedAtMs), 1)} s${a.resolvedAtMs === null ? ' (still firing)' : `, resolved at ${num(s(a.resolvedAtMs), 1)} s`}`).join('; ')
      }.`,
      '',
    );
  }

  lines.push('## Faults', '');
  if (r.faults.length === 0) lines.push('None.', '');
  else {
    lines.push(
      table(
        ['fault', 'rule', 'phases', 'matched', 'injected'],
        r.faults.map((f) => [f.name, `\`${JSON.stringify(f.rule)}\``, f.phases.join(', ') || '–', String(f.stats?.matched ?? '–'), String(f.stats?.injected ?? '–')]),
        ['l', 'l', 'l'],
      ),
      '',
    );
  }
  if (r.notes.length > 0) lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return lines.join('\n').replace(/\n{3,}/g, '\n\n');
}

/** Writes report.json, report.md and the charts to `dir`; returns the paths. */
export function writeReport(report: ScenarioReport, dir: string, extraCharts: readonly Chart[] = []): { json: string; markdown: string; charts: string[] } {
  mkdirSync(dir, { recursive: true });
  const list = [...charts(report), ...extraCharts];
  const json = join(dir, 'report.json');
  const markdown = join(dir, 'report.md');
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(markdown, renderMarkdown(report, list));
  const files = list.map((c) => {
    const path = join(dir, c.file);
    writeFileSync(path, c.svg);
    return path;
  });
  return { json, markdown, charts: files };
}
