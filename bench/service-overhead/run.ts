/**
 * Service overhead (issue: benchmarks): the same job run by `evop prune` in one process and through the service
 * (API, coordinator and workers as separate processes on PostgreSQL and Redis) with one and with two workers.
 * Reported: wall time per generation of the search; per fitness task, the time it waited in the queue and the
 * time a worker spent on it; the share of the workers' time spent on fitness tasks during the search; and, on a
 * trivial model (stories260K, 16-token windows, ~1 ms an evaluation), what the service adds per generation and
 * per task. Every process runs onnxruntime with one evaluation thread, so one worker and `evop prune` have the
 * same compute, and their searches are checked to be the same to the last bit. Each runner runs ROUNDS times, in
 * turn; the round with the median search time is reported.
 * `npm run bench:service-overhead`; results in bench/results/service-overhead.json.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  data,
  finishedReport,
  RUNTIME,
  runEvopPrune,
  startService,
  uploadModel,
  uploadStories,
} from '@evop/integration-tests/service-fixture';
import type { PruneReport } from '@evop/pipeline';
import { QUEUES, redisConnection } from '@evop/queue';
import { Queue } from 'bullmq';
import { benchModel } from '../bench-model.ts';
import { machine, median, saveResult, table } from '../report.ts';

interface Spec {
  target: { units: number };
  granularity: 'layer' | 'sublayer';
  budget: number;
  calibration: number;
  heldOut: number;
  seqLen: number;
}

const JOBS: { name: string; model: 'deep16' | 'trivial'; spec: Spec; workers: number[] }[] = [
  {
    name: 'stories-deep16, 4 of 16 layers',
    model: 'deep16',
    spec: {
      target: { units: 4 },
      granularity: 'layer',
      budget: 200,
      calibration: 16,
      heldOut: 8,
      seqLen: 64,
    },
    workers: [1, 2],
  },
  {
    name: 'trivial: stories260K, 16-token windows',
    model: 'trivial',
    spec: {
      target: { units: 4 },
      granularity: 'sublayer',
      budget: 1000,
      calibration: 4,
      heldOut: 4,
      seqLen: 16,
    },
    workers: [1, 2],
  },
];

/** The spec as `evop prune` flags. */
const flags = (s: Spec) =>
  [
    ['--remove', s.target.units],
    ['--granularity', s.granularity],
    ['--budget', s.budget],
    ['--calibration', s.calibration],
    ['--held-out', s.heldOut],
    ['--seq-len', s.seqLen],
  ].flatMap(([k, v]) => [String(k), String(v)]);

const ROUNDS = 3;
const searchSeconds = (r: PruneReport) => r.timings['search:evop']!;
const generations = (r: PruneReport) => r.searches[0]!.history.length;

interface Run {
  round: number;
  job: string;
  runner: string;
  workers: number;
  generations: number;
  searchSeconds: number;
  secondsPerGeneration: number;
  sameSearchAsLocal: boolean | null;
  tasks: number | null;
  masksPerTask: number | null;
  medianQueueWaitMs: number | null;
  medianTaskMs: number | null;
  workerBusyShare: number | null;
}

const dir = mkdtempSync(join(tmpdir(), 'evop-service-overhead-'));
const runs: Run[] = [];
try {
  const deep16 = benchModel('stories-deep16', dir).model.path;
  for (let round = 0; round < ROUNDS; round++)
    for (const job of JOBS) {
      const modelPath = job.model === 'deep16' ? deep16 : data.model;
      const local = await runEvopPrune(
        ['--model', modelPath, '--tokenizer', data.tokenizer, '--data', data.stories, ...flags(job.spec)],
        join(dir, `local-${job.model}-${round}`),
      );
      const row = (runner: string, workers: number, r: PruneReport) => ({
        round,
        job: job.name,
        runner,
        workers,
        generations: generations(r),
        searchSeconds: searchSeconds(r),
        secondsPerGeneration: searchSeconds(r) / generations(r),
      });
      runs.push({
        ...row('evop prune', 0, local),
        sameSearchAsLocal: null,
        tasks: null,
        masksPerTask: null,
        medianQueueWaitMs: null,
        medianTaskMs: null,
        workerBusyShare: null,
      });
      for (const workers of job.workers) {
        const service = await startService(workers);
        try {
          const api = await service.client('bench');
          const modelId = await uploadModel(api, job.model, modelPath);
          const datasetId = await uploadStories(api);
          const submitted = await api.request('POST', '/v1/jobs', { modelId, datasetId, spec: job.spec });
          const report = await finishedReport(api, submitted.json.id);
          const connection = redisConnection();
          const queue = new Queue(QUEUES.fitness, { connection, prefix: service.prefix });
          const tasks = (await queue.getJobs(['completed'], 0, -1)).filter(
            (t) => t.data.jobId === submitted.json.id,
          );
          await queue.close();
          await connection.quit();
          const busyMs = tasks.reduce((s, t) => s + (t.finishedOn! - t.processedOn!), 0);
          runs.push({
            ...row('service', workers, report),
            sameSearchAsLocal: isDeepStrictEqual(report.searches[0]!.history, local.searches[0]!.history),
            tasks: tasks.length,
            masksPerTask: tasks.reduce((s, t) => s + t.data.masks.length, 0) / tasks.length,
            medianQueueWaitMs: median(tasks.map((t) => t.processedOn! - t.timestamp)),
            medianTaskMs: median(tasks.map((t) => t.finishedOn! - t.processedOn!)),
            workerBusyShare: busyMs / (workers * 1000 * searchSeconds(report)),
          });
        } finally {
          await service.close();
        }
      }
    }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Per job and runner, the round with the median search time (this machine is shared: one slow moment is noise). */
const medians = [...new Set(runs.map((r) => `${r.job}|${r.workers}`))].map((key) => {
  const rounds = runs.filter((r) => `${r.job}|${r.workers}` === key);
  const middle = [...rounds].sort((a, b) => a.searchSeconds - b.searchSeconds)[rounds.length >> 1]!;
  const same = rounds.map((r) => r.sameSearchAsLocal);
  return { ...middle, sameSearchAsLocal: same[0] === null ? null : same.every(Boolean) };
});
const overhead = JOBS.map((job) => {
  const local = medians.find((r) => r.job === job.name && r.runner === 'evop prune')!;
  const one = medians.find((r) => r.job === job.name && r.workers === 1)!;
  return {
    job: job.name,
    addedSecondsPerGeneration: one.secondsPerGeneration - local.secondsPerGeneration,
    addedMsPerTask: (1000 * (one.searchSeconds - local.searchSeconds)) / one.tasks!,
    serviceOverLocal: one.searchSeconds / local.searchSeconds,
  };
});
const opt = (v: number | null | boolean, f: (x: number) => string) =>
  v === null ? '-' : typeof v === 'boolean' ? (v ? 'yes' : 'NO') : f(v);
process.stdout.write(
  `${table(
    [
      'job',
      'runner',
      'workers',
      'gens',
      'search s',
      's/gen',
      'same search',
      'tasks',
      'masks/task',
      'queue wait ms',
      'task ms',
      'workers busy',
    ],
    medians.map((r) => [
      r.job,
      r.runner,
      r.workers || '-',
      r.generations,
      r.searchSeconds.toFixed(1),
      r.secondsPerGeneration.toFixed(3),
      opt(r.sameSearchAsLocal, String),
      opt(r.tasks, String),
      opt(r.masksPerTask, (x) => x.toFixed(1)),
      opt(r.medianQueueWaitMs, (x) => x.toFixed(0)),
      opt(r.medianTaskMs, (x) => x.toFixed(0)),
      opt(r.workerBusyShare, (x) => `${(100 * x).toFixed(0)} %`),
    ]),
  )}\n\n${table(
    ['job', 'added s/gen (1 worker)', 'added ms/task', 'service / local'],
    overhead.map((o) => [
      o.job,
      o.addedSecondsPerGeneration.toFixed(3),
      o.addedMsPerTask.toFixed(1),
      o.serviceOverLocal.toFixed(2),
    ]),
  )}\n`,
);
process.stdout.write(
  `saved ${saveResult('service-overhead', { machine: machine(), runtime: RUNTIME, rounds: ROUNDS, medians, overhead, runs })}\n`,
);
