import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { type Candidate, createStrategy, type EvaluationResult, runSearch, SearchSpace } from '@evop/core';
import { Queue, QueueEvents, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  type FitnessTask,
  fitnessTask,
  QUEUES,
  QueueEvaluator,
  redisConnection,
  taskWorker,
} from '../src/index.ts';

// A key prefix of this test file's own: nothing else on the Redis server is touched.
const prefix = `evop-test-${randomBytes(4).toString('hex')}`;
const connections: Redis[] = [];
const connection = () => {
  const c = redisConnection();
  connections.push(c);
  return c;
};
let queue: Queue;
let events: QueueEvents;
const workers: Worker[] = [];

before(async () => {
  queue = new Queue(QUEUES.fitness, { connection: connection(), prefix });
  events = new QueueEvents(QUEUES.fitness, { connection: connection(), prefix });
  await events.waitUntilReady();
});
after(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await queue.obliterate({ force: true });
  await queue.close();
  await events.close();
  await Promise.all(connections.map((c) => c.quit()));
});

/** A deterministic landscape: each pruned unit i costs 1/(i+1), the low fidelity adds a small error. */
function fitnessOf(mask: string, fidelity: number): EvaluationResult {
  let f = 2;
  for (let i = 0; i < mask.length; i++) if (mask[i] === '0') f += 1 / (i + 1) + ((i * 7) % 3) * 0.01;
  return { nllSum: (f + (fidelity < 1 ? 0.001 * (mask.indexOf('0') % 5) : 0)) * 100, count: 100 };
}
const local = { evaluate: async (cs: readonly Candidate[]) => cs.map((c) => fitnessOf(c.mask, c.fidelity)) };
const space = new SearchSpace({
  units: Array.from({ length: 12 }, (_, i) => ({ id: `layer${i}`, params: 1 })),
  target: { units: 4 },
});
const sha = (s: string) => s.repeat(64).slice(0, 64);

test('a search fanned out over Redis to two workers gives what the same search gives in process', async () => {
  const served: Record<string, number> = { a: 0, b: 0 };
  for (const name of ['a', 'b'])
    workers.push(
      taskWorker(
        QUEUES.fitness,
        fitnessTask,
        async (task: FitnessTask) => {
          served[name]! += task.masks.length;
          await new Promise((r) => setTimeout(r, 5));
          return task.masks.map((m) => fitnessOf(m, task.fidelity));
        },
        { connection: connection(), prefix },
      ),
    );
  const evaluator = new QueueEvaluator({
    queue,
    events,
    task: {
      jobId: 'job1',
      modelSha256: sha('a'),
      layoutSha256: sha('e'),
      windowsSha256: sha('b'),
      granularity: 'layer',
    },
    masksPerTask: 4,
  });
  const distributed = await runSearch({
    strategy: createStrategy('evop', space, { seed: 4, budget: 150 }),
    evaluator,
  });
  const inProcess = await runSearch({
    strategy: createStrategy('evop', space, { seed: 4, budget: 150 }),
    evaluator: local,
  });
  assert.deepEqual(distributed.history, inProcess.history);
  assert.deepEqual(distributed.best, inProcess.best);
  assert.ok(served.a! > 0 && served.b! > 0, `both workers took tasks (${served.a}, ${served.b})`);
});

/**
 * A queue, its events and one worker running `process`, under a key prefix of their own; all removed after.
 */
async function withQueue(
  name: string,
  process: (task: FitnessTask) => Promise<EvaluationResult[]>,
  body: (queue: Queue, events: QueueEvents) => Promise<void>,
): Promise<void> {
  const own = `${prefix}-${name}`;
  const q = new Queue(QUEUES.fitness, { connection: connection(), prefix: own });
  const ev = new QueueEvents(QUEUES.fitness, { connection: connection(), prefix: own });
  await ev.waitUntilReady();
  const worker = taskWorker(QUEUES.fitness, fitnessTask, process, { connection: connection(), prefix: own });
  try {
    await body(q, ev);
  } finally {
    await worker.close();
    await q.obliterate({ force: true });
    await q.close();
    await ev.close();
  }
}

test('a task added twice is evaluated once', async () => {
  let calls = 0;
  const process = async (task: FitnessTask) => {
    calls++;
    return task.masks.map((m) => fitnessOf(m, task.fidelity));
  };
  await withQueue('dup', process, async (q, ev) => {
    const evaluator = new QueueEvaluator({
      queue: q,
      events: ev,
      task: {
        jobId: 'job2',
        modelSha256: sha('c'),
        layoutSha256: sha('e'),
        windowsSha256: sha('d'),
        granularity: 'layer',
      },
    });
    const candidates = [{ mask: '011101111111', fidelity: 1 }];
    const [a, b] = await Promise.all([evaluator.evaluate(candidates), evaluator.evaluate(candidates)]);
    assert.deepEqual(a, b);
    assert.equal(calls, 1);
  });
});

test('a malformed task fails at once naming the field, without retries', async () => {
  let calls = 0;
  const process = async (task: FitnessTask) => {
    calls++;
    return task.masks.map(() => ({ nllSum: 0, count: 1 }));
  };
  await withQueue('bad', process, async (q, ev) => {
    const payload = {
      jobId: 'j',
      modelSha256: 'nothex',
      windowsSha256: sha('e'),
      granularity: 'layer',
      fidelity: 1,
      masks: ['01'],
    };
    const job = await q.add(QUEUES.fitness, payload, { attempts: 3 });
    await assert.rejects(
      job.waitUntilFinished(ev, 10_000),
      /fitness task: modelSha256: a lowercase hex sha256/,
    );
    assert.equal(calls, 0);
    assert.equal((await q.getJob(job.id!))!.attemptsMade, 1, 'not retried');
  });
});

test('a task that fails once is retried and succeeds; one that failed for good runs again when added again', async () => {
  const attempts: string[] = [];
  let failuresLeft = 1;
  const process = async (task: FitnessTask) => {
    attempts.push(task.masks.join());
    if (failuresLeft-- > 0) throw new Error('worker lost its model file');
    return task.masks.map((m) => fitnessOf(m, task.fidelity));
  };
  await withQueue('retry', process, async (q, ev) => {
    const task = {
      jobId: 'job3',
      modelSha256: sha('f'),
      layoutSha256: sha('e'),
      windowsSha256: sha('0'),
      granularity: 'layer',
    } as const;
    const candidates = [{ mask: '101111111111', fidelity: 1 }];
    const expected = [fitnessOf(candidates[0]!.mask, 1)];
    assert.deepEqual(await new QueueEvaluator({ queue: q, events: ev, task }).evaluate(candidates), expected);
    assert.equal(attempts.length, 2, 'failed once, retried once');

    // With one attempt, a failure is final: the search gets the worker's error, named with the task's kind.
    const once = new QueueEvaluator({ queue: q, events: ev, task, attempts: 1 });
    const other = [{ mask: '110111111111', fidelity: 1 }];
    failuresLeft = 1;
    await assert.rejects(once.evaluate(other), /^Error: fitness task failed: worker lost its model file$/);
    // The same task added again (after an outage, by a coordinator taking the job over) runs again.
    assert.deepEqual(await once.evaluate(other), [fitnessOf(other[0]!.mask, 1)]);
    assert.equal(attempts.length, 4);
  });
});
