import type { Dataset, Job, Model, Result } from '@evop/db';
import {
  type EvalDataset,
  type FrontPoint,
  frontSeries,
  type ReportLatency,
  speedupCells,
} from '@evop/pipeline/control';
import { z } from 'zod';

export const idParams = z.object({ id: z.string().uuid('a job, model or dataset id (uuid)') });

export function modelView(m: Model) {
  const layout = m.layout as {
    layers: number;
    hiddenSize: number;
    vocabSize: number;
    totalParams: number;
    maxPositions?: number;
  };
  return {
    id: m.id,
    name: m.name,
    sha256: m.sha256,
    files: m.files,
    bytes: Number(m.bytes),
    tokenizer: m.tokenizerName,
    layers: layout.layers,
    hiddenSize: layout.hiddenSize,
    vocabSize: layout.vocabSize,
    params: layout.totalParams,
    /** The longest seqLen the model takes, where its graph fixes one (a position table); else null. */
    context: layout.maxPositions ?? null,
    createdAt: m.createdAt.toISOString(),
  };
}

export function datasetView(d: Dataset) {
  return {
    id: d.id,
    name: d.name,
    format: d.format,
    sha256: d.sha256,
    bytes: Number(d.bytes),
    documents: d.documents,
    createdAt: d.createdAt.toISOString(),
  };
}

/** A job as clients see it; `result` once it has succeeded, with links to its downloads. */
export function jobView(j: Job & { result?: Result | null }) {
  const report = j.result
    ? (JSON.parse(j.result.report) as {
        protocol: { datasets?: EvalDataset[] };
        table: unknown;
        latency: ReportLatency | null;
        failed?: { stage: string; error: string }[];
        result: { pruned: string[]; prunedModules?: (string | null)[]; consistency: number };
        front?: (FrontPoint & { target: boolean; pareto: boolean })[];
      })
    : undefined;
  return {
    id: j.id,
    modelId: j.modelId,
    datasetId: j.datasetId,
    evalDatasetIds: j.evalDatasetIds,
    status: j.status,
    stage: j.stage,
    progress: j.progress,
    best: j.best,
    error: j.error,
    cancelRequested: j.cancelRequested,
    spec: j.spec,
    createdAt: j.createdAt.toISOString(),
    startedAt: j.startedAt?.toISOString() ?? null,
    finishedAt: j.finishedAt?.toISOString() ?? null,
    result:
      j.result && report
        ? {
            mask: j.result.mask,
            pruned: report.result.pruned,
            /** Each pruned unit's PyTorch module, null where the export does not say. */
            prunedModules: report.result.prunedModules ?? report.result.pruned.map(() => null),
            consistency: report.result.consistency,
            /** The data sets each table row's `datasets` perplexities are for, in order. */
            datasets: report.protocol.datasets ?? [],
            table: report.table,
            latency: report.latency,
            /** Prefill and decode speedup in words: the ratio with its 95 % interval, or why there is none. */
            speedup: speedupCells(report.latency),
            failed: report.failed ?? [],
            /**
             * The quality–speed front by units pruned (empty without `spec.front`): each point's held-out
             * perplexity, speedup in words and the link to its model.
             */
            front: (report.front ?? []).map((p) => ({
              ...p,
              speedup: speedupCells(p.latency),
              link: p.target
                ? `/v1/jobs/${j.id}/artifacts/model.onnx`
                : `/v1/jobs/${j.id}/front/${p.units}/artifacts/model.onnx`,
            })),
            /** What the dashboard's front chart draws (front-chart.js). */
            frontChart: frontSeries(report),
            links: {
              model: `/v1/jobs/${j.id}/artifacts/model.onnx`,
              report: `/v1/jobs/${j.id}/report.json`,
              reportHtml: `/v1/jobs/${j.id}/report.html`,
              files: `/v1/jobs/${j.id}/files`,
            },
          }
        : null,
  };
}
