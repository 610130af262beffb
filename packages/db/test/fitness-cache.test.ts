import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createStrategy, runSearch, SearchSpace } from '@evop/core';
import { createTestDatabase, PostgresFitnessCache, type TestDatabase } from '../src/index.ts';

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase();
});
after(() => t?.drop());

test('results are stored once per (model, windows, fidelity, mask) and served back', async () => {
  const cache = new PostgresFitnessCache(t.db, 'model-a', 'windows-1');
  const candidates = [
    { mask: '0111', fidelity: 1 },
    { mask: '0111', fidelity: 0.25 },
    { mask: '1011', fidelity: 1 },
  ];
  assert.deepEqual(await cache.get(candidates), [undefined, undefined, undefined]);
  await cache.set([
    {
      candidate: candidates[0]!,
      result: {
        nllSum: 10,
        count: 4,
        clusters: [
          { nllSum: 6, count: 2 },
          { nllSum: 4, count: 2 },
        ],
      },
    },
    { candidate: candidates[1]!, result: { nllSum: 3, count: 1 } },
  ]);
  // A retried write of the same key changes nothing.
  await cache.set([{ candidate: candidates[0]!, result: { nllSum: 999, count: 1 } }]);
  assert.deepEqual(await cache.get(candidates), [
    {
      nllSum: 10,
      count: 4,
      clusters: [
        { nllSum: 6, count: 2 },
        { nllSum: 4, count: 2 },
      ],
    },
    { nllSum: 3, count: 1 },
    undefined,
  ]);
  // Another model or evaluation set does not see these rows.
  assert.deepEqual(await new PostgresFitnessCache(t.db, 'model-b', 'windows-1').get(candidates), [
    undefined,
    undefined,
    undefined,
  ]);
  assert.deepEqual(await new PostgresFitnessCache(t.db, 'model-a', 'windows-2').get(candidates), [
    undefined,
    undefined,
    undefined,
  ]);
  assert.equal(await t.db.evaluation.count(), 2);
});

test('stored fitness comes back bit for bit (Prisma alone would round it to 15 digits)', async () => {
  const cache = new PostgresFitnessCache(t.db, 'model-exact', 'windows-1');
  const result = { nllSum: 0.1 + 0.2, count: 3, clusters: [{ nllSum: 1.6000000000000003, count: 1 }] };
  await cache.set([{ candidate: { mask: '0101', fidelity: 0.25 }, result }]);
  assert.deepEqual(await cache.get([{ mask: '0101', fidelity: 0.25 }]), [result]);
});

test('a second identical search is served wholly from the PostgreSQL cache', async () => {
  const space = new SearchSpace({
    units: Array.from({ length: 10 }, (_, i) => ({ id: `layer${i}`, params: 1 })),
    target: { units: 3 },
  });
  let evaluated = 0;
  const evaluator = {
    async evaluate(cs: readonly { mask: string; fidelity: number }[]) {
      evaluated += cs.length;
      return cs.map((c) => ({
        nllSum: [...c.mask].reduce((s, b, i) => s + (b === '0' ? (i + 1) * 0.1 : 0), 1),
        count: 1,
      }));
    },
  };
  const cache = new PostgresFitnessCache(t.db, 'model-c', 'windows-1');
  const first = await runSearch({
    strategy: createStrategy('evop', space, { seed: 2, budget: 100 }),
    evaluator,
    cache,
  });
  const once = evaluated;
  const second = await runSearch({
    strategy: createStrategy('evop', space, { seed: 2, budget: 100 }),
    evaluator,
    cache,
  });
  assert.ok(once > 0);
  assert.equal(evaluated, once, 'nothing evaluated again');
  assert.deepEqual(second.best, first.best);
  assert.equal(second.history.at(-1)!.cacheHits, second.history.at(-1)!.evaluations);
});
