import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Candidate, createStrategy, runSearch, SearchSpace } from '@evop/core';
import {
  createTestDatabase,
  PostgresCheckpoints,
  PostgresFitnessCache,
  type TestDatabase,
} from '../src/index.ts';

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase();
});
after(() => t?.drop());

// Fitness values with all 17 significant digits: a store that rounded them would change the resumed search.
const evaluator = {
  evaluate: async (cs: readonly Candidate[]) =>
    cs.map((c) => ({
      nllSum:
        [...c.mask].reduce((s, b, i) => s + (b === '1' ? Math.sqrt(i + 2) * Math.PI : 0), 0) * c.fidelity,
      count: 1,
    })),
};
const space = new SearchSpace({
  units: Array.from({ length: 14 }, (_, i) => ({ id: `layer${i}`, params: 1 + (i % 3) })),
  target: { units: 5 },
});

/** A job row (with its tenant, model and dataset) for checkpoints to belong to. */
async function newJob(tenantName: string) {
  const tenant = await t.db.tenant.upsert({
    where: { name: tenantName },
    create: { name: tenantName },
    update: {},
  });
  const common = { tenantId: tenant.id, name: 'm', sha256: 'a', bytes: 1n };
  const model = await t.db.model.create({
    data: {
      ...common,
      manifestSha256: 'b',
      files: [],
      tokenizerSha256: 'c',
      tokenizerName: 'tok.bin',
      layout: {},
    },
  });
  const dataset = await t.db.dataset.create({ data: { ...common, format: 'text', documents: 1 } });
  return t.db.job.create({
    data: { tenantId: tenant.id, modelId: model.id, datasetId: dataset.id, spec: {} },
  });
}

test('a search stopped and resumed from its PostgreSQL checkpoints retraces an uninterrupted one exactly', async () => {
  const job = await newJob('t');
  const uninterrupted = await runSearch({
    strategy: createStrategy('evop', space, { seed: 7, budget: 300 }),
    evaluator,
  });

  const checkpoints = new PostgresCheckpoints(t.db, job.id);
  const controller = new AbortController();
  const stopped = await runSearch({
    strategy: createStrategy('evop', space, { seed: 7, budget: 300 }),
    evaluator,
    signal: controller.signal,
    checkpoint: (c) => checkpoints.save('evop', c),
    onProgress: (r) => {
      if (r.generation === 3) controller.abort();
    },
  });
  assert.ok(stopped.stopped && stopped.history.length < uninterrupted.history.length);
  const resume = await checkpoints.load('evop');
  assert.equal(resume!.history.length, stopped.history.length);
  const resumed = await runSearch({
    strategy: createStrategy('evop', space, { seed: 7, budget: 300 }),
    evaluator,
    resume: resume!,
    checkpoint: (c) => checkpoints.save('evop', c),
  });
  assert.deepEqual(resumed.history, uninterrupted.history);
  assert.deepEqual(resumed.best, uninterrupted.best);
  assert.equal(await t.db.generation.count({ where: { jobId: job.id } }), uninterrupted.history.length);
});

test('a search that dies while checkpointing resumes without counting its unsaved generation as cache hits', async () => {
  const strategy = () => createStrategy('evop', space, { seed: 9, budget: 300 });
  const run = async (set: string, dieAt?: number) => {
    const job = await newJob('u');
    let died = false;
    const cache = new PostgresFitnessCache(t.db, 'model', set, { deferWrites: true });
    const checkpoints = new PostgresCheckpoints(t.db, job.id, { cache });
    const search = (resume?: Awaited<ReturnType<typeof checkpoints.load>>, cacheNow = cache) =>
      runSearch({
        strategy: strategy(),
        evaluator,
        cache: cacheNow,
        ...(resume ? { resume } : {}),
        checkpoint: async (c) => {
          if (c.history.length === dieAt && !died) {
            died = true;
            throw new Error('the coordinator died');
          }
          await new PostgresCheckpoints(t.db, job.id, { cache: cacheNow }).save('evop', c);
        },
      });
    if (dieAt === undefined) return search();
    await assert.rejects(search(), /died/);
    // Another coordinator: a fresh cache on the same rows, the last checkpoint.
    return search(
      await checkpoints.load('evop'),
      new PostgresFitnessCache(t.db, 'model', set, { deferWrites: true }),
    );
  };
  const uninterrupted = await run('set-a');
  const resumed = await run('set-b', 3);
  assert.deepEqual(resumed.history, uninterrupted.history);
});
