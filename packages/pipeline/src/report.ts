import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GenerationRecord, Target } from '@evop/core';
import type { LatencyComparison } from '@evop/runtime';
import type { StageFailure } from './finalize.ts';
import { latencyLines, speedupCells } from './latency-text.ts';
import type { SearchSpec } from './search-spec.ts';

export interface TaskScore {
  acc: number;
  accStderr: number;
  accNorm: number;
  accNormStderr: number;
  n: number;
}

/** A data set the comparison reports on its own: a `--data` corpus (in-domain) or an `--eval-data` one (out). */
export interface EvalDataset {
  name: string;
  /** in: a corpus calibration drew from, on its held-out windows; out: never calibrated on, on its own windows. */
  domain: 'in' | 'out';
  /** Windows measured (0: the corpus gave none of the held-out windows). */
  windows: number;
}

/** One line of the comparison table: the dense model or one strategy's best mask, on the held-out windows. */
export interface ReportRow {
  method: string;
  mask: string;
  perplexity: number;
  clusterPerplexity: (number | null)[];
  /** Held-out perplexity on each of `protocol.datasets`, in its order (null where it has no windows). */
  datasets: (number | null)[];
  calibrationFitness: number | null;
  evaluations: number;
  params: number;
  tasks: Record<string, TaskScore>;
}

/** A point of the quality–speed front: one target's best mask, its model and what it measured. */
export interface FrontPoint {
  /** Units it prunes. */
  units: number;
  mask: string;
  pruned: string[];
  /** Its model, relative to the run's folder: `model.onnx` for the spec's target, `front/<units>-units/model.onnx`. */
  model: string;
  /** Held-out perplexity overall, and on each of `protocol.datasets` (null where it has no windows). */
  perplexity: number;
  datasets: (number | null)[];
  calibrationFitness: number;
  evaluations: number;
  params: number;
  /** Its model against the dense one; null where the measurement failed (named in `failed`). */
  latency: LatencyComparison | null;
}

export interface PruneReport {
  /** The search spec, with where the model and the data came from (paths for the CLI, ids for the service). */
  spec: SearchSpec & Record<string, unknown>;
  protocol: Record<string, unknown> & { datasets: EvalDataset[] };
  model: {
    /** The model's own name: its file's (or generic `model.onnx`'s folder's), or the name given at upload. */
    name: string;
    path: string;
    sha256: string;
    layers: number;
    /** With the PyTorch module each was exported from, when the export says (to apply the plan in PyTorch). */
    units: { id: string; params: number; module?: string }[];
    params: number;
  };
  calibration: {
    clusters: { size: number; calibration: number; heldOut: number }[];
    calibrationWindows: number[];
    heldOutWindows: number[];
    assignments: number[];
    poolSha256: string;
  };
  influence: number[];
  searches: { strategy: string; best: { mask: string; fitness: number }; history: GenerationRecord[] }[];
  result: {
    mask: string;
    pruned: string[];
    /** Each pruned unit's PyTorch module (`model.layers.13.self_attn`), null where the export does not say. */
    prunedModules: (string | null)[];
    model: string;
    consistency: number;
  };
  table: ReportRow[];
  /**
   * Null when the latency stage failed (named in `failed`). A report.json of an earlier evop holds an
   * `EarlierLatency` here instead, which the renderers also show.
   */
  latency: LatencyComparison | null;
  /**
   * The quality–speed front, by units pruned (empty without `spec.front`): the spec's target (`target`) and each of
   * the front's; `pareto` where no other point is both faster at prefill and lower in held-out perplexity.
   */
  front?: (FrontPoint & { target: boolean; pareto: boolean })[];
  /** Stages that failed after the pruned model was written; `evop prune --resume` completes them. */
  failed: StageFailure[];
  versions: Record<string, string>;
  timings: Record<string, number>;
}

export function targetText(target: Target): string {
  if ('units' in target) return `${target.units} units`;
  if ('fraction' in target) return `${target.fraction * 100}% of units`;
  return `${target.paramFraction * 100}% of parameters`;
}

/** A perplexity as the tables show it ('-' where there is none). */
const pplText = (p: number | null | undefined) => (p == null ? '-' : p.toFixed(3));

/** A data set's column heading: its name and whether calibration drew from it. */
export const datasetHeading = (d: EvalDataset) =>
  `${d.name} ppl (${d.domain === 'in' ? 'in' : 'out of'} domain)`;

/** A zero-shot score as the tables show it: accuracy ± standard error, in percent. */
const taskText = (s: TaskScore | undefined) =>
  s ? `${(100 * s.acc).toFixed(1)} ± ${(100 * s.accStderr).toFixed(1)}` : '-';

/**
 * The comparison table's cells, one array per method: held-out perplexity overall (what the searches are
 * compared on) and per data set, parameters, evaluations, each zero-shot task; `columns` names them.
 */
function comparison(report: PruneReport): { columns: string[]; rows: string[][] } {
  const datasets = report.protocol.datasets ?? [];
  const tasks = report.spec.tasks;
  return {
    columns: [
      'method',
      'held-out ppl',
      ...datasets.map(datasetHeading),
      'params',
      'evaluations',
      ...tasks.map((t) => `${t} acc`),
    ],
    rows: report.table.map((r) => [
      r.method,
      pplText(r.perplexity),
      ...datasets.map((_, i) => pplText(r.datasets?.[i])),
      `${(r.params / 1e6).toFixed(3)}M`,
      String(r.evaluations),
      ...tasks.map((t) => taskText(r.tasks[t])),
    ]),
  };
}

/**
 * The front's cells, a row per point by units pruned: held-out perplexity overall and per data set, parameters,
 * prefill and decode speedup, whether it is Pareto-optimal, its model's file.
 */
function frontCells(report: PruneReport): { columns: string[]; rows: string[][] } {
  const datasets = report.protocol.datasets ?? [];
  return {
    columns: [
      'units pruned',
      'held-out ppl',
      ...datasets.map(datasetHeading),
      'params',
      'prefill',
      'decode',
      'pareto',
      'model',
    ],
    rows: (report.front ?? []).map((p) => {
      const speed = speedupCells(p.latency);
      return [
        `${p.units}${p.target ? ' (target)' : ''}`,
        pplText(p.perplexity),
        ...datasets.map((_, i) => pplText(p.datasets[i])),
        `${(p.params / 1e6).toFixed(3)}M`,
        speed.prefill,
        speed.decode,
        p.pareto ? 'yes' : '',
        p.model,
      ];
    }),
  };
}

/** Cells as aligned text, a header line and a rule above the rows. */
function textTable({ columns, rows }: { columns: string[]; rows: string[][] }): string {
  const widths = columns.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(columns), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The comparison table as aligned text, for the terminal and the README. */
export function reportTable(report: PruneReport): string {
  return [textTable(comparison(report)), '', latencyText(report)].join('\n');
}

/** The front as aligned text ('' without a front), for the terminal. */
export function frontText(report: PruneReport): string {
  return report.front?.length ? textTable(frontCells(report)) : '';
}

/** The pruned units, each with its PyTorch module where the export names it: the plan to apply elsewhere. */
export function prunedText(report: PruneReport): string {
  const modules = report.result.prunedModules ?? [];
  return report.result.pruned.map((id, i) => (modules[i] ? `${id} (${modules[i]})` : id)).join(', ');
}

/** Speed, dense against pruned: a line per phase with median tokens/s, intervals and the verdict. */
export function latencyText(report: PruneReport): string {
  return latencyLines(report.latency).join('\n');
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** Chart.js's UMD build, inlined so that the page needs nothing from the network. */
function chartJs(): string {
  // The package's exports hide the UMD build; it sits beside the entry point.
  const entry = createRequire(import.meta.url).resolve('chart.js');
  return readFileSync(join(dirname(entry), 'chart.umd.min.js'), 'utf8').replaceAll('</script', '<\\/script');
}

/** Per generation, the fraction of the population that prunes each unit. */
function pruneFrequency(history: GenerationRecord[], units: number): number[][] {
  return history
    .filter((g) => g.population.length > 0)
    .map((g) =>
      Array.from(
        { length: units },
        (_, u) => g.population.filter((m) => m[u] === '0').length / g.population.length,
      ),
    );
}

/** The heatmap's colour for a fraction of the population (0…1): transparent to full red. */
const heatColour = (f: number) => `rgba(200,40,40,${f.toFixed(3)})`;

/**
 * The unit heatmap: a row per unit (finally pruned ones in bold, with their module), a column per generation,
 * each cell coloured by the fraction of the population that prunes the unit; with the generation axis and a
 * legend of the colour scale.
 */
function heatmapHtml(report: PruneReport, history: GenerationRecord[]): string {
  const frequency = pruneFrequency(history, report.model.units.length);
  const generations = history.filter((g) => g.population.length > 0).map((g) => g.generation);
  const pruned = new Set(report.result.pruned);
  const rows = report.model.units.map((unit, u) => {
    const label = `${escapeHtml(unit.id)}${unit.module ? ` <span class="module">${escapeHtml(unit.module)}</span>` : ''}`;
    const cells = frequency
      .map((g, i) => {
        const title = `${unit.id}, generation ${generations[i]}: ${(100 * g[u]!).toFixed(0)}% of the population prune it`;
        return `<td style="background:${heatColour(g[u]!)}" title="${escapeHtml(title)}"></td>`;
      })
      .join('');
    return `<tr><th${pruned.has(unit.id) ? ' class="pruned"' : ''}>${label}</th>${cells}</tr>`;
  });
  // A tick every tenth generation (and the first), drawn over the cells without widening them.
  const ticks = generations
    .map((g, i) => `<td class="tick">${i === 0 || g % 10 === 0 ? `<span>${g}</span>` : ''}</td>`)
    .join('');
  const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => `<span style="left:${100 * f}%">${100 * f}%</span>`);
  return `<table class="heat" id="heatmap"><tr><th class="axis">unit ↓ / generation →</th><td colspan="${generations.length}"></td></tr>
${rows.join('\n')}
<tr class="ticks"><th class="axis">generation</th>${ticks}</tr></table>
<div class="legend"><span class="label">fraction of the population that prunes the unit</span>
<div class="scale" style="background:linear-gradient(to right,${heatColour(0)},${heatColour(1)})">${stops.join('')}</div></div>
<p class="note">Rows: the model's units (bold: pruned in the result); columns: the ${escapeHtml(report.searches[0]!.strategy)} search's generations.</p>`;
}

/** The pruned units with their PyTorch modules and parameters, so that the plan can be applied in PyTorch. */
function prunedHtml(report: PruneReport): string {
  const modules = report.result.prunedModules ?? [];
  const params = new Map(report.model.units.map((u) => [u.id, u.params]));
  const rows = report.result.pruned.map(
    (id, i) =>
      `<tr><td>${escapeHtml(id)}</td><td><code>${escapeHtml(modules[i] ?? '-')}</code></td><td>${params.get(id) ?? '-'}</td></tr>`,
  );
  return `<table id="pruned"><tr><th>unit</th><th>PyTorch module</th><th>parameters</th></tr>${rows.join('')}</table>`;
}

/** Where the front's chart script is: inlined by report.html, served to the dashboard. */
export const FRONT_CHART_SCRIPT = fileURLToPath(new URL('./front-chart.js', import.meta.url));

/**
 * What the front's chart draws (front-chart.js's `front`): per point by units pruned, held-out perplexity overall
 * and on each data set that differs from it, the median prefill and decode speedup, whether it is Pareto-optimal.
 */
export function frontSeries(report: {
  front?: PruneReport['front'];
  protocol: { datasets?: EvalDataset[] };
}) {
  const points = report.front ?? [];
  const speed = (l: FrontPoint['latency'], phase: 'prefill' | 'decode') => l?.[phase]?.ratio?.median ?? null;
  return {
    units: points.map((p) => p.units),
    overall: points.map((p) => p.perplexity),
    // A data set drawn apart where it differs from the overall line (one corpus's held-out windows are all of them).
    datasets: (report.protocol.datasets ?? [])
      .map((d, i) => ({ name: d.name, values: points.map((p) => p.datasets[i] ?? null) }))
      .filter((d) => d.values.some((v, k) => v !== points[k]!.perplexity)),
    prefill: points.map((p) => speed(p.latency, 'prefill')),
    decode: points.map((p) => speed(p.latency, 'decode')),
    pareto: points.map((p) => p.pareto),
  };
}

/**
 * The front's section: held-out perplexity (overall, and per data set where there are several) and measured
 * prefill / decode speedup against units pruned on two axes, Pareto-optimal points drawn large; then its table.
 * '' without a front.
 */
function frontHtml(report: PruneReport): { section: string; script: string } {
  const points = report.front ?? [];
  if (points.length === 0) return { section: '', script: '' };
  const data = frontSeries(report);
  const { columns, rows } = frontCells(report);
  const table = [
    `<tr>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`,
    ...rows.map(
      (cells, i) =>
        `<tr${points[i]!.pareto ? ' class="pareto"' : ''}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`,
    ),
  ].join('\n');
  const section = `<h2>Quality–speed front</h2>
<p>One search per target, each point's best mask exported (<code>evop apply</code> takes its <code>mask.json</code>); held-out
perplexity (left axis) and measured speed of the pruned model over the dense one (right axis, median ratio) against units
pruned. Large diamonds: Pareto-optimal points (no other point is both faster at prefill and lower in perplexity).</p>
<div style="height:340px"><canvas id="front"></canvas></div>
<table id="front-table">${table}</table>`;
  const script = `${readFileSync(FRONT_CHART_SCRIPT, 'utf8')}
drawFront(Chart, document.getElementById('front'), ${JSON.stringify(data).replaceAll('</', '<\\/')});`;
  return { section, script };
}

/** The model's name for titles; a report of an earlier evop has only its path. */
export const modelName = (report: PruneReport) => report.model.name ?? report.model.path;

/**
 * report.html: one self-contained page with the best / mean fitness per generation (Chart.js, inlined), a
 * heatmap of how often each unit is pruned in the population over generations, the pruned units with their
 * modules, and the comparison table.
 */
export function renderReportHtml(report: PruneReport): string {
  const main = report.searches[0]!;
  const series = {
    labels: main.history.map((g) => g.generation),
    best: main.history.map((g) => g.best?.fitness ?? null),
    mean: main.history.map((g) => g.mean),
  };
  const { columns, rows } = comparison(report);
  const table = [
    `<tr>${[...columns, 'mask'].map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`,
    ...rows.map(
      (cells, i) =>
        `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}<td><code>${report.table[i]!.mask}</code></td></tr>`,
    ),
  ].join('\n');
  const datasets = (report.protocol.datasets ?? [])
    .map((d) => `${escapeHtml(datasetHeading(d))}: ${d.windows} windows`)
    .join('; ');
  const failed = report.failed
    .map((f) => `<li><b>${escapeHtml(f.stage)}</b>: ${escapeHtml(f.error)}</li>`)
    .join('');
  const name = escapeHtml(modelName(report));
  const front = frontHtml(report);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evop: ${name}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td{white-space:nowrap}td:first-child{text-align:left}
th{text-align:left;background:#f5f5f5}code{font-size:12px}
.heat{margin-bottom:0}.heat td{width:10px;min-width:10px;height:14px;padding:0;border:1px solid #eee}
.heat th{font-weight:normal;font-size:11px;padding:0 6px;white-space:nowrap}.heat th.pruned{font-weight:bold}
.heat .module{color:#777}.heat th.axis{font-style:italic;color:#555;background:none;border:none}
.heat tr:first-child td,.heat .ticks td{border:none;background:none}
.heat .tick{position:relative;height:16px}.heat .tick span{position:absolute;left:0;top:1px;font-size:10px;color:#555}
.legend{display:flex;align-items:center;gap:1em;margin:0.8em 0 0;font-size:12px;color:#444}
.legend .scale{position:relative;width:240px;height:14px;border:1px solid #ccc;margin-bottom:14px}
.legend .scale span{position:absolute;top:15px;transform:translateX(-50%);font-size:10px}
.note{font-size:12px;color:#555}
#front-table tr.pareto td{font-weight:bold}
</style></head><body>
<h1>evop: ${name}</h1>
<p>Pruned ${escapeHtml(targetText(report.spec.target))}${report.front?.length ? ` (the front: ${report.front.map((p) => p.units).join(', ')} units)` : ''} at ${report.spec.granularity} granularity with <b>${escapeHtml(main.strategy)}</b>
(seed ${report.spec.seed}, budget ${report.spec.budget}). Model sha256 <code>${report.model.sha256}</code>.
Protocol: ${report.spec.seqLen}-token windows, ${report.spec.calibration} calibration and ${report.spec.heldOut} held-out windows
(${report.spec.sampling} sampling, ${report.calibration.clusters.length} clusters), objective ${report.spec.objective}.</p>
<h2>Pruned units</h2>
${prunedHtml(report)}
<h2>Search</h2><div style="height:320px"><canvas id="fitness"></canvas></div>
<h2>How often each unit is pruned in the population</h2>
${heatmapHtml(report, main.history)}
<h2>Comparison on held-out windows</h2>
<p>Held-out perplexity overall (what the methods are compared on) and per data set${datasets ? ` (${datasets})` : ''}; zero-shot accuracy ± standard error in %.</p>
<table id="comparison">${table}</table>
<p id="latency">${latencyLines(report.latency).map(escapeHtml).join('<br>\n')}</p>
${front.section}
${failed ? `<h2>Stages that failed</h2><ul>${failed}</ul><p>Complete them with <code>evop prune --resume</code>.</p>` : ''}
<script>${chartJs()}</script>
<script>
const s = ${JSON.stringify(series)};
new Chart(document.getElementById('fitness'), { type: 'line', data: { labels: s.labels, datasets: [
  { label: 'best (NLL per token)', data: s.best, borderColor: '#c82828', pointRadius: 1 },
  { label: 'population mean', data: s.mean, borderColor: '#2860c8', pointRadius: 1 } ] },
  options: { maintainAspectRatio: false, animation: false, scales: { x: { title: { display: true, text: 'generation' } } } } });
${front.script}
</script></body></html>
`;
}
