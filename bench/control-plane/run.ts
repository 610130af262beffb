/**
 * Control plane at scale: fitness tasks per second that one coordinator process, Redis and PostgreSQL sustain end
 * to end when workers answer instantly, and where the time goes (fitness-cache reads, queue round trip, cache
 * writes, checkpoints). Jobs run the coordinator's own path: runSearch → PostgresFitnessCache → QueueEvaluator →
 * PostgresCheckpoints. `npm run bench:control-plane`; results in bench/results/control-plane.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type Candidate, createStrategy, type FitnessCache, runSearch, SearchSpace } from '@evop/core';
import { createTestDatabase, PostgresCheckpoints, PostgresFitnessCache } from '@evop/db';
import { QUEUES, QueueEvaluator, redisConnection } from '@evop/queue';
import { Queue, QueueEvents } from 'bullmq';
import { machine, saveResult, table } from '../report.ts';

const WORKERS = Number(process.env.WORKERS ?? 4);
const MASKS_PER_JOB = Number(process.env.MASKS_PER_JOB ?? 2000);
const prefix = `evop-bench-${randomBytes(4).toString('hex')}`;
const space = new SearchSpace({
  units: Array.from({ length: 64 }, (_, i) => ({ id: `layer${i}`, params: 1 })),
  target: { units: 16 },
});

const timers = { cacheGet: 0, queue: 0, cacheSet: 0, checkpoint: 0 };
const timed = async <T>(key: keyof typeof timers, run: () => Promise<T>): Promise<T> => {
  const t = performance.now();
  try {
    return await run();
  } finally {
    timers[key] += performance.now() - t;
  }
};

const t = await createTestDatabase();
const children: ChildProcess[] = [];
const connections = [redisConnection(), redisConnection()];
const queue = new Queue(QUEUES.fitness, { connection: connections[0]!, prefix });
const events = new QueueEvents(QUEUES.fitness, { connection: connections[1]!, prefix });
queue.setMaxListeners(0); // as the coordinator does: every waiting task listens for the queue closing
const results: Record<string, unknown>[] = [];
try {
  for (let i = 0; i < WORKERS; i++) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./trivial-worker.ts', import.meta.url))],
      {
        env: { ...process.env, EVOP_QUEUE_PREFIX: prefix },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    await new Promise((resolve) => child.stdout!.once('data', resolve));
  }
  await events.waitUntilReady();
  const tenant = await t.db.tenant.create({ data: { name: 'bench' } });
  const base = { tenantId: tenant.id, name: 'bench', sha256: 'a', bytes: 1n };
  const model = await t.db.model.create({
    data: {
      ...base,
      manifestSha256: 'b',
      files: [],
      tokenizerSha256: 'c',
      tokenizerName: 't.bin',
      layout: {},
    },
  });
  const dataset = await t.db.dataset.create({ data: { ...base, format: 'text', documents: 1 } });

  for (const [jobs, masksPerTask] of [
    [1, 1],
    [8, 1],
    [32, 1],
    [32, 8],
  ] as const) {
    for (const k of Object.keys(timers)) timers[k as keyof typeof timers] = 0;
    const started = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: jobs }, async (_, j) => {
        const job = await t.db.job.create({
          data: { tenantId: tenant.id, modelId: model.id, datasetId: dataset.id, spec: {} },
        });
        const sha = randomBytes(32).toString('hex');
        const cache = new PostgresFitnessCache(t.db, sha, sha, { deferWrites: true });
        const timedCache: FitnessCache = {
          get: (cs: readonly Candidate[]) => timed('cacheGet', () => cache.get(cs)),
          set: (entries) => timed('cacheSet', () => cache.set(entries)),
        };
        const evaluator = new QueueEvaluator({
          queue,
          events,
          task: {
            jobId: job.id,
            modelSha256: sha,
            layoutSha256: sha,
            windowsSha256: sha,
            granularity: 'layer',
          },
          masksPerTask,
        });
        const checkpoints = new PostgresCheckpoints(t.db, job.id, { cache });
        const outcome = await runSearch({
          strategy: createStrategy('random', space, { seed: j, budget: MASKS_PER_JOB }),
          evaluator: { evaluate: (cs, signal) => timed('queue', () => evaluator.evaluate(cs, signal)) },
          cache: timedCache,
          checkpoint: (c) => timed('checkpoint', () => checkpoints.save('random', c)),
        });
        return outcome.history.at(-1)!.evaluations;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const masks = outcomes.reduce((a, b) => a + b, 0);
    const tasks = Math.ceil(masks / masksPerTask);
    // Per job, stages run one after another; across jobs they overlap: shares are of the summed stage time.
    const total = Object.values(timers).reduce((a, b) => a + b, 0);
    results.push({
      jobs,
      masksPerTask,
      masks,
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      masksPerSecond: masks / seconds,
      share: Object.fromEntries(Object.entries(timers).map(([k, v]) => [k, v / total])),
    });
  }
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => c.once('close', r))));
  await queue.obliterate({ force: true });
  await queue.close();
  await events.close();
  await Promise.all(connections.map((c) => c.quit()));
  await t.drop();
}

process.stdout.write(
  `${table(
    [
      'jobs',
      'masks/task',
      'tasks',
      'seconds',
      'tasks/s',
      'masks/s',
      'cache get',
      'queue',
      'cache set',
      'checkpoint',
    ],
    results.map((r) => {
      const share = r.share as Record<string, number>;
      const pct = (k: string) => `${(100 * share[k]!).toFixed(0)} %`;
      return [
        r.jobs as number,
        r.masksPerTask as number,
        r.tasks as number,
        (r.seconds as number).toFixed(1),
        Math.round(r.tasksPerSecond as number),
        Math.round(r.masksPerSecond as number),
        pct('cacheGet'),
        pct('queue'),
        pct('cacheSet'),
        pct('checkpoint'),
      ];
    }),
  )}\n`,
);
const path = saveResult('control-plane', {
  machine: machine(),
  workers: WORKERS,
  masksPerJob: MASKS_PER_JOB,
  results,
});
process.stdout.write(`saved ${path}\n`);
