/**
 * `runScenario`: drives a scenario against a running target. At each phase's
 * start it samples the target's counters and switches the phase's faults on
 * (and the others off) through the fault admin API; meanwhile it samples
 * `/metrics` and `/slo` every interval; after the load it clears its faults —
 * always, also when the run fails or is aborted — and builds the report
 * (./report.ts), written to `outDir` when given (./markdown.ts).
 */
import { runLoad } from '../load/load.js';
import type { LoadOptions, LoadPhase, LoadResult } from '../load/types.js';
import { FaultAdminError, FaultAdmins } from './faults.js';
import { writeReport, type Chart } from './markdown.js';
import { buildReport, type ScenarioReport } from './report.js';
import { Sampler, type Snapshot } from './sampler.js';
import { ScenarioError, type FaultRule, type Scenario } from './scenario.js';
import { prepareWorkload, type PreparedWorkload } from './workloads.js';

export interface RunScenarioOptions {
  /** The target's origin; overrides the file's `target.url`. */
  target?: string;
  /** Fault admin base URLs (default: the file's, else the target). */
  faultAdmins?: readonly string[];
  /** Base URLs serving `/metrics` (default: the file's, else the target). */
  metrics?: readonly string[];
  /** Base URLs serving `/slo` (default: the file's, else the target). */
  slo?: readonly string[];
  /** The admin API's key; default the environment variable the file names (`SHOP_INTERNAL_KEY`). */
  internalKey?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Write report.json, report.md and the charts here. */
  outDir?: string;
  /** Charts to add to the written report (an experiment's own). */
  extraCharts?: readonly Chart[];
  /** The workload to drive instead of the file's (an experiment's own). */
  workload?: PreparedWorkload;
  progress?: LoadOptions['progress'];
  signal?: AbortSignal;
  /** Called at each phase's start, after its faults are on. */
  onPhase?: (phase: LoadPhase, index: number) => void | Promise<void>;
}

export interface ScenarioRun {
  report: ScenarioReport;
  load: LoadResult;
  /** The load phases driven (the file's phases, with idle ones filling gaps between explicit `at`s). */
  phases: LoadPhase[];
  /** Paths written when `outDir` was given. */
  files?: { json: string; markdown: string; charts: string[] };
  /** The faults were removed from every admin at the end. */
  faultsCleared: boolean;
  aborted: boolean;
}

/** The file's phases as load phases, idle (rate 0, no faults) phases filling the gaps an explicit `at` leaves. */
export function loadPhases(scenario: Scenario): { phases: LoadPhase[]; faults: string[][] } {
  const phases: LoadPhase[] = [];
  const faults: string[][] = [];
  let end = 0;
  for (const p of scenario.phases) {
    if (p.atMs > end) {
      phases.push({ name: `idle-before-${p.name}`, durationMs: p.atMs - end, rate: 0 });
      faults.push([]);
    }
    phases.push({ name: p.name, durationMs: p.durationMs, rate: p.rate, ...(p.rateTo === undefined ? {} : { rateTo: p.rateTo }) });
    faults.push(p.faults);
    end = p.atMs + p.durationMs;
  }
  return { phases, faults };
}

export async function runScenario(scenario: Scenario, options: RunScenarioOptions = {}): Promise<ScenarioRun> {
  const target = (options.target ?? scenario.target.url)?.replace(/\/+$/, '');
  if (target === undefined) throw new Error(`scenario ${scenario.name}: no target (give target.url in the file, --target, or --start-shop)`);
  const admins = options.faultAdmins ?? scenario.target.faultAdmins ?? [target];
  const env = options.env ?? process.env;
  const key = options.internalKey ?? env[scenario.target.internalKeyEnv] ?? '';
  const usesFaults = scenario.phases.some((p) => p.faults.length > 0);
  if (usesFaults && key === '') throw new Error(`scenario ${scenario.name}: the fault admin key is required (set ${scenario.target.internalKeyEnv} or pass the internal key)`);

  const { phases, faults: phaseFaults } = loadPhases(scenario);
  const faults = new FaultAdmins(admins, key);
  const sampler = new Sampler({ metrics: options.metrics ?? scenario.target.metrics ?? [target], slo: options.slo ?? scenario.target.slo ?? [target], intervalMs: scenario.intervalMs });
  const bounds: Snapshot[] = [];
  const notes: string[] = [];
  let faultsCleared = !usesFaults;
  let workload: PreparedWorkload | undefined;
  let load: LoadResult;
  const began = Date.now();

  const rulesFor = (index: number): Map<string, FaultRule> => new Map((phaseFaults[index] ?? []).map((name) => [name, scenario.faults[name] as FaultRule]));
  /** The admin refused a rule of the file: name the rule's line. */
  const located = (error: unknown): unknown => {
    if (!(error instanceof FaultAdminError) || error.status !== 400) return error;
    const name = error.rule ?? '';
    return new ScenarioError(scenario.file, [
      { line: scenario.faultLines[name] ?? 1, column: 1, field: `faults.${name}${error.field === undefined ? '' : `.${error.field}`}`, message: `refused by the fault admin ${error.admin}: ${error.detail}` },
    ]);
  };
  const onPhase = async (phase: LoadPhase, index: number): Promise<void> => {
    bounds.push(await sampler.snapshot());
    try {
      await faults.apply(rulesFor(index));
    } catch (error) {
      throw located(error);
    }
    await options.onPhase?.(phase, index);
  };

  try {
    // Rules of ours a crashed earlier run may have left behind go first.
    if (usesFaults) {
      await faults.clear(Object.keys(scenario.faults));
      // Every admin validates every rule now (put with probability 0, then removed), so a rule it
      // refuses fails the run before any load, not at its phase.
      try {
        await faults.check(new Map(Object.entries(scenario.faults).filter(([name]) => scenario.phases.some((p) => p.faults.includes(name)))));
      } catch (error) {
        throw located(error);
      }
    }
    workload = options.workload ?? (await prepareWorkload(scenario.workload, target, { internalKey: key }));
    sampler.start();
    load = await runLoad({
      target,
      phases,
      workload: workload.workload,
      ...(workload.isSuccess === undefined ? {} : { isSuccess: workload.isSuccess }),
      maxRate: scenario.maxRate,
      seed: scenario.seed,
      intervalMs: scenario.intervalMs,
      ...(scenario.timeoutMs === undefined ? {} : { timeoutMs: scenario.timeoutMs }),
      ...(scenario.maxInFlight === undefined ? {} : { maxInFlight: scenario.maxInFlight }),
      ...(scenario.connections === undefined ? {} : { connections: scenario.connections }),
      ...(options.progress === undefined ? {} : { progress: options.progress }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onPhase,
    });
  } finally {
    await sampler.stop();
    if (usesFaults) {
      try {
        await faults.clear(Object.keys(scenario.faults));
        faultsCleared = true;
      } catch (error) {
        notes.push(`could not clear the faults: ${error instanceof Error ? error.message : String(error)}`);
        process.stderr.write(`scenario ${scenario.name}: COULD NOT CLEAR ITS FAULTS (${error instanceof Error ? error.message : String(error)}); remove them with DELETE /admin/faults/<name> on ${admins.join(', ')}\n`);
      }
    }
    await workload?.close?.();
  }

  bounds.push(await sampler.snapshot());
  const alerts = await sampler.alerts(began - 1_000);
  const aborted = options.signal?.aborted === true;
  if (aborted) notes.push('the run was aborted: later phases are short or empty');
  notes.push(...sampler.notes);
  const report = buildReport({ scenario, load, phaseFaults, bounds, samples: sampler.samples, alerts, faultStats: faults.stats, notes });
  const run: ScenarioRun = { report, load, phases, faultsCleared, aborted };
  if (options.outDir !== undefined) run.files = writeReport(report, options.outDir, options.extraCharts);
  return run;
}
