import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStrategy, runSearch } from '../src/index.ts';
import { layerSpace, SyntheticLandscape } from './synthetic.ts';

test('evop finds the brute-forced optimum of a landscape that fools greedy removal in ≥ 9 of 10 seeds', async () => {
  const space = layerSpace(18, 6);
  const landscape = new SyntheticLandscape(space, 7, [
    [2, 11],
    [5, 14],
  ]);
  const optimum = landscape.optimum();
  assert.equal(space.maskCount, 18564);
  assert.ok(
    ['2', '11', '5', '14'].every((u) => space.prunedUnits(optimum.mask).includes(Number(u))),
    'the optimum uses both traps',
  );

  const sleb = await runSearch({ strategy: createStrategy('sleb', space), evaluator: landscape });
  assert.ok(
    sleb.best!.fitness > optimum.fitness + 1e-9,
    `sleb should miss the optimum (got ${sleb.best!.mask})`,
  );

  let found = 0;
  const spent: number[] = [];
  for (let seed = 0; seed < 10; seed++) {
    const strategy = createStrategy('evop', space, { seed });
    const outcome = await runSearch({ strategy, evaluator: landscape });
    if (outcome.best!.mask === optimum.mask) found++;
    spent.push(strategy.spent);
  }
  assert.ok(found >= 9, `evop found the optimum in ${found} of 10 seeds (spent ${spent.join(', ')})`);
  assert.ok(Math.max(...spent) <= 1000, 'within the default budget');
});

test('with budget to spare, evop ends on a mask that no single swap improves, each neighbour measured on all windows', async () => {
  for (const seed of [0, 1, 2]) {
    const space = layerSpace(16, 6);
    const landscape = new SyntheticLandscape(space, 11 + seed);
    const strategy = createStrategy('evop', space, { seed, budget: 5000 });
    const outcome = await runSearch({ strategy, evaluator: landscape });
    assert.ok(strategy.spent < 5000, 'stopped by the search, not the budget');
    const full = new Set(landscape.log.filter((c) => c.fidelity === 1).map((c) => c.mask));
    const best = outcome.best!;
    for (const neighbour of space.neighbours(best.mask)) {
      assert.ok(full.has(neighbour), `seed ${seed}: neighbour ${neighbour} measured on all windows`);
      assert.ok(landscape.fitness(neighbour) >= best.fitness, `seed ${seed}: ${neighbour} is no better`);
    }
  }
});
