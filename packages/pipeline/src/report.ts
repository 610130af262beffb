import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { GenerationRecord, Target } from '@evop/core';
import type { LatencyResult } from '@evop/runtime';
import type { StageFailure } from './finalize.ts';
import type { SearchSpec } from './search-spec.ts';

export interface TaskScore {
  acc: number;
  accStderr: number;
  accNorm: number;
  accNormStderr: number;
  n: number;
}

/** One line of the comparison table: the dense model or one strategy's best mask, on the held-out windows. */
export interface ReportRow {
  method: string;
  mask: string;
  perplexity: number;
  clusterPerplexity: (number | null)[];
  calibrationFitness: number | null;
  evaluations: number;
  params: number;
  tasks: Record<string, TaskScore>;
}

export interface PruneReport {
  /** The search spec, with where the model and the data came from (paths for the CLI, ids for the service). */
  spec: SearchSpec & Record<string, unknown>;
  protocol: Record<string, unknown>;
  model: {
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
  result: { mask: string; pruned: string[]; model: string; consistency: number };
  table: ReportRow[];
  /** Null when the latency stage failed (named in `failed`). */
  latency: { dense: LatencyResult; pruned: LatencyResult } | null;
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

/** The comparison table as aligned text, for the terminal and the README. */
export function reportTable(report: PruneReport): string {
  const tasks = report.spec.tasks;
  const header = ['method', 'held-out ppl', 'params', 'evaluations', ...tasks.map((t) => `${t} acc`)];
  const rows = report.table.map((r) => [
    r.method,
    r.perplexity.toFixed(3),
    `${(r.params / 1e6).toFixed(3)}M`,
    String(r.evaluations),
    ...tasks.map((t) =>
      r.tasks[t]
        ? `${(100 * r.tasks[t]!.acc).toFixed(1)} ± ${(100 * r.tasks[t]!.accStderr).toFixed(1)}`
        : '-',
    ),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    '',
    latencyText(report),
  ].join('\n');
}

/** One line on speed: tokens/s of dense and pruned, prefill / decode, with the speedup. */
export function latencyText(report: PruneReport): string {
  if (!report.latency) return 'latency: not measured (the stage failed; evop prune --resume measures it)';
  const { dense, pruned } = report.latency;
  const decode = (l: LatencyResult) => (l.decode ? String(Math.round(l.decode.median)) : 'n/a');
  const speed = (l: LatencyResult) => `${Math.round(l.prefill.median)} / ${decode(l)}`;
  const ratio = (p: number, d: number) => `×${(p / d).toFixed(2)}`;
  const decodeRatio =
    pruned.decode && dense.decode ? ratio(pruned.decode.median, dense.decode.median) : 'n/a: no KV cache';
  return (
    `tokens/s, prefill / decode (median, batch 1): dense ${speed(dense)}, pruned ${speed(pruned)} ` +
    `(${ratio(pruned.prefill.median, dense.prefill.median)} / ${decodeRatio})`
  );
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

/**
 * report.html: one self-contained page with the best / mean fitness per generation (Chart.js, inlined), a
 * heatmap of how often each unit is pruned in the population over generations, and the comparison table.
 */
export function renderReportHtml(report: PruneReport): string {
  const main = report.searches[0]!;
  const frequency = pruneFrequency(main.history, report.model.units.length);
  const heatmap = report.model.units
    .map((unit, u) => {
      const cells = frequency
        .map(
          (g) =>
            `<td style="background:rgba(200,40,40,${g[u]!.toFixed(3)})" title="${(100 * g[u]!).toFixed(0)}%"></td>`,
        )
        .join('');
      return `<tr><th>${escapeHtml(unit.id)}</th>${cells}</tr>`;
    })
    .join('\n');
  const series = {
    labels: main.history.map((g) => g.generation),
    best: main.history.map((g) => g.best?.fitness ?? null),
    mean: main.history.map((g) => g.mean),
  };
  const tasks = report.spec.tasks;
  const rows = report.table
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.method)}</td><td>${r.perplexity.toFixed(3)}</td><td>${(r.params / 1e6).toFixed(3)}M</td>` +
        `<td>${r.evaluations}</td><td><code>${r.mask}</code></td>` +
        tasks.map((t) => `<td>${r.tasks[t] ? (100 * r.tasks[t]!.acc).toFixed(1) : '-'}</td>`).join('') +
        '</tr>',
    )
    .join('\n');
  const failed = report.failed
    .map((f) => `<li><b>${escapeHtml(f.stage)}</b>: ${escapeHtml(f.error)}</li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evop report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{text-align:left;background:#f5f5f5}.heat td{width:10px;height:12px;padding:0;border:1px solid #eee}
.heat th{font-weight:normal;font-size:11px;padding:0 6px}code{font-size:12px}
</style></head><body>
<h1>evop: ${escapeHtml(report.model.path)}</h1>
<p>Pruned ${escapeHtml(targetText(report.spec.target))} at ${report.spec.granularity} granularity with <b>${escapeHtml(main.strategy)}</b>
(seed ${report.spec.seed}, budget ${report.spec.budget}); removed: ${report.result.pruned.map(escapeHtml).join(', ')}.
Protocol: ${report.spec.seqLen}-token windows, ${report.spec.calibration} calibration and ${report.spec.heldOut} held-out windows
(${report.spec.sampling} sampling, ${report.calibration.clusters.length} clusters), objective ${report.spec.objective}.</p>
<h2>Search</h2><div style="height:320px"><canvas id="fitness"></canvas></div>
<h2>How often each unit is pruned in the population</h2>
<table class="heat">${heatmap}</table>
<h2>Comparison on held-out windows</h2>
<table><tr><th>method</th><th>perplexity</th><th>params</th><th>evaluations</th><th>mask</th>${tasks.map((t) => `<th>${escapeHtml(t)} acc</th>`).join('')}</tr>
${rows}</table>
<p>${escapeHtml(latencyText(report))}.</p>
${failed ? `<h2>Stages that failed</h2><ul>${failed}</ul><p>Complete them with <code>evop prune --resume</code>.</p>` : ''}
<script>${chartJs()}</script>
<script>
const s = ${JSON.stringify(series)};
new Chart(document.getElementById('fitness'), { type: 'line', data: { labels: s.labels, datasets: [
  { label: 'best (NLL per token)', data: s.best, borderColor: '#c82828', pointRadius: 1 },
  { label: 'population mean', data: s.mean, borderColor: '#2860c8', pointRadius: 1 } ] },
  options: { maintainAspectRatio: false, animation: false, scales: { x: { title: { display: true, text: 'generation' } } } } });
</script></body></html>
`;
}
