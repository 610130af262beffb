import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type Candidate,
  cacheKey,
  createStrategy,
  type Evaluator,
  type EvopStrategy,
  MemoryFitnessCache,
  runSearch,
  type SearchCheckpoint,
  SearchOptionError,
  SearchSpace,
  STRATEGIES,
} from '../src/index.ts';
import { layerSpace, SyntheticLandscape } from './synthetic.ts';

const kindOf = (i: number) => (i % 2 ? 'mlp' : 'attn');

function subBlockSpace(U: number, pruned: number, protectedUnits: number[], balanced = false): SearchSpace {
  return new SearchSpace({
    units: Array.from({ length: U }, (_, i) => ({ id: `${kindOf(i)}${i >> 1}`, params: i % 2 ? 300 : 100 })),
    target: { units: pruned },
    protected: protectedUnits,
    ...(balanced ? { balance: Array.from({ length: U }, (_, i) => kindOf(i)) } : {}),
  });
}

/** Pruned attention and MLP units of a mask, as counts. */
function kinds(mask: string): { attn: number; mlp: number } {
  const zeros = [...mask].flatMap((bit, i) => (bit === '0' ? [kindOf(i)] : []));
  return { attn: zeros.filter((k) => k === 'attn').length, mlp: zeros.filter((k) => k === 'mlp').length };
}

test('every candidate of every strategy meets the target and spares protected units; none is measured twice', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 6, max: 12 }).chain((U) =>
        fc.record({
          U: fc.constant(U),
          pruned: fc.integer({ min: 1, max: U - 3 }),
          protectedUnits: fc.uniqueArray(fc.integer({ min: 0, max: U - 1 }), { maxLength: 2 }),
          seed: fc.nat(1000),
          strategy: fc.constantFrom(...STRATEGIES),
          balanced: fc.boolean(),
        }),
      ),
      async ({ U, pruned: asked, protectedUnits, seed, strategy, balanced: drawn }) => {
        const balanced = drawn && strategy !== 'sleb'; // SLEB removes whole layers: nothing to balance
        // Balanced: as many attention as MLP units pruned (an even count), where the unprotected units allow it.
        const pruned = balanced ? Math.max(2, asked - (asked % 2)) : asked;
        let space: SearchSpace;
        try {
          space =
            strategy === 'blockpruner' || balanced
              ? subBlockSpace(U, pruned, protectedUnits, balanced)
              : layerSpace(U, pruned, protectedUnits);
        } catch (err) {
          fc.pre(!(balanced && err instanceof SearchOptionError && err.option === 'balance'));
          throw err;
        }
        const landscape = new SyntheticLandscape(space, seed);
        const influence = Array.from({ length: U }, (_, i) => landscape.cost[i]!);
        const s = createStrategy(strategy, space, {
          seed,
          budget: 200,
          influence,
          seedShortGpt: seed % 2 === 0,
        });
        const outcome = await runSearch({ strategy: s, evaluator: landscape });
        const greedy = strategy === 'sleb' || strategy === 'blockpruner';
        const seen = new Set<string>();
        for (const c of landscape.log) {
          // Greedy removal proposes j pruned units at step j, evop's greedy walk the same on screening windows;
          // every other candidate is a complete mask.
          const zeros = space.prunedUnits(c.mask).length;
          const walk = greedy || (strategy === 'evop' && c.fidelity < 1);
          assert.ok(space.accepts(c.mask, walk ? zeros : pruned), `${strategy}: ${c.mask}`);
          assert.ok(zeros <= pruned);
          assert.ok(!seen.has(cacheKey(c)), `${strategy} measured ${cacheKey(c)} twice`);
          seen.add(cacheKey(c));
        }
        assert.ok(outcome.best && space.accepts(outcome.best.mask), `${strategy} ends with a complete mask`);
        if (balanced)
          for (const c of landscape.log.filter((c) => space.prunedUnits(c.mask).length === pruned))
            assert.deepEqual(kinds(c.mask), { attn: pruned / 2, mlp: pruned / 2 }, `${strategy}: ${c.mask}`);
        if (strategy === 'exhaustive') assert.equal(landscape.log.length, space.maskCount);
        if (strategy === 'exhaustive')
          assert.ok(Math.abs(outcome.best!.fitness - landscape.optimum().fitness) < 1e-12);
      },
    ),
    { numRuns: 60, seed: 42 },
  );
});

test('the same seed gives the same search; a different seed another', async () => {
  const space = layerSpace(16, 5);
  const run = async (seed: number) => {
    const landscape = new SyntheticLandscape(space, 3);
    const outcome = await runSearch({
      strategy: createStrategy('evop', space, { seed, budget: 300 }),
      evaluator: landscape,
    });
    return { log: landscape.log, history: outcome.history };
  };
  assert.deepEqual(await run(5), await run(5));
  assert.notDeepEqual((await run(5)).log, (await run(6)).log);
});

test('a search stopped after 5 generations and restored in a fresh instance finishes as an uninterrupted one', async () => {
  for (const name of ['evop', 'evopress', 'random', 'sleb', 'exhaustive'] as const) {
    const space = layerSpace(12, 4);
    const options = { seed: 9, budget: 400 };
    const whole = new SyntheticLandscape(space, 4);
    const wholeStrategy = createStrategy(name, space, options);
    const uninterrupted = await runSearch({ strategy: wholeStrategy, evaluator: whole });

    const first = new SyntheticLandscape(space, 4);
    const controller = new AbortController();
    let saved: SearchCheckpoint | undefined;
    const partial = await runSearch({
      strategy: createStrategy(name, space, options),
      evaluator: first,
      signal: controller.signal,
      checkpoint: (c) => {
        saved = JSON.parse(JSON.stringify(c));
        if (c.history.length === Math.min(5, uninterrupted.history.length - 1)) controller.abort();
      },
    });
    assert.equal(partial.stopped, true, name);
    const second = new SyntheticLandscape(space, 4);
    const resumedStrategy = createStrategy(name, space, options);
    const resumed = await runSearch({ strategy: resumedStrategy, evaluator: second, resume: saved! });
    assert.deepEqual(resumed.history, uninterrupted.history, `${name}: history`);
    assert.deepEqual(resumed.best, uninterrupted.best, `${name}: best`);
    assert.deepEqual([...first.log, ...second.log], whole.log, `${name}: the same candidates, none twice`);
    assert.deepEqual(resumedStrategy.state(), wholeStrategy.state(), `${name}: final state, RNG included`);
  }
});

test('the fitness cache serves repeated candidates and counts the hits', async () => {
  const space = layerSpace(10, 3);
  const cache = new MemoryFitnessCache();
  const first = new SyntheticLandscape(space, 1);
  const a = await runSearch({
    strategy: createStrategy('evop', space, { seed: 1, budget: 200 }),
    evaluator: first,
    cache,
  });
  const second = new SyntheticLandscape(space, 1);
  const b = await runSearch({
    strategy: createStrategy('evop', space, { seed: 1, budget: 200 }),
    evaluator: second,
    cache,
  });
  assert.deepEqual(b.best, a.best);
  assert.equal(second.log.length, 0, 'an identical second search is served wholly from the cache');
  assert.equal(b.history.at(-1)!.cacheHits, b.history.at(-1)!.evaluations);
  assert.equal(a.history.at(-1)!.cacheHits, 0);
});

test('invalid options are refused naming the option', () => {
  const space = layerSpace(8, 2);
  const cases: [() => unknown, string, RegExp][] = [
    [
      () => createStrategy('annealing', space),
      'strategy',
      /unknown strategy 'annealing'; use one of evop, evopress/,
    ],
    [() => createStrategy('evop', space, { budget: -5 }), 'budget', /must be a positive integer/],
    [() => createStrategy('evop', space, { budget: 10 }), 'budget', /less than one population of 32/],
    [() => createStrategy('evop', space, { evop: { crossover: 1.5 } }), 'evop.crossover', /probability/],
    [
      () => createStrategy('evop', space, { evop: { population: 4, tournament: 5 } }),
      'evop.tournament',
      /must be in 1…population, got 5/,
    ],
    [
      () => createStrategy('evop', space, { evop: { polishMoves: 0 } }),
      'evop.polishMoves',
      /must be a positive integer, got 0/,
    ],
    [() => createStrategy('shortgpt', space), 'influence', /needs the units’ block influence/],
    [() => createStrategy('blockpruner', space), 'strategy', /use sublayer granularity/],
    [
      () => createStrategy('exhaustive', layerSpace(30, 10)),
      'strategy',
      /would evaluate 30045015 masks, more than maxMasks = 5000/,
    ],
    [() => layerSpace(8, 8), 'target.units', /8 units to prune, but the model has only 8/],
    [() => layerSpace(8, 0), 'target.units', /at least one unit/],
    [() => layerSpace(8, 7, [0, 1]), 'target', /only 6 of 8 may be pruned/],
    [() => layerSpace(8, 2, [9]), 'protected', /no unit 9/],
    [
      () =>
        new SearchSpace({
          units: [
            { id: 'layer0', params: 1 },
            { id: 'layer1', params: 1 },
          ],
          target: { fraction: 1.5 },
        }),
      'target.fraction',
      /fraction in \(0, 1\)/,
    ],
  ];
  // A population smaller than the default tournament takes a tournament of the whole population.
  assert.equal(
    (createStrategy('evop', space, { evop: { population: 4 } }) as EvopStrategy).options.tournament,
    4,
  );
  for (const [make, option, message] of cases)
    assert.throws(
      make,
      (e: unknown) => e instanceof SearchOptionError && e.option === option && message.test(e.message),
      option,
    );
});

test('fraction and parameter targets resolve to an exact unit count', () => {
  const units = Array.from({ length: 32 }, (_, i) => ({
    id: `${i % 2 ? 'mlp' : 'attn'}${i >> 1}`,
    params: i % 2 ? 300 : 100,
  }));
  assert.equal(new SearchSpace({ units, target: { fraction: 0.25 } }).pruned, 8);
  // 25 % of 6400 parameters is 1600, eight units of the mean size 200.
  assert.equal(new SearchSpace({ units, target: { paramFraction: 0.25 } }).pruned, 8);
});

test('a balanced space counts, and refuses, by group', () => {
  const space = subBlockSpace(8, 4, [], true);
  assert.equal(space.maskCount, 6 * 6, 'C(4,2) attention × C(4,2) MLP choices');
  assert.equal(space.accepts('00001111'), true);
  assert.equal(space.accepts('00010111'), false, 'three attention blocks, one MLP block');
  assert.throws(
    () => subBlockSpace(8, 3, [], true),
    (err: SearchOptionError) =>
      err.option === 'balance' && /3 units to prune cannot be split equally/.test(err.message),
  );
});

test('fit moves a mask of another target to this one: by rank, within each group, protected units kept', () => {
  const rank = [5, 1, 4, 2, 8, 3, 7, 6];
  // From 2 pruned to 4: the two kept units of lowest rank (1: rank 1, 3: rank 2) are pruned as well.
  assert.equal(layerSpace(8, 4).fit('11110011', rank), '10100011');
  // From 4 pruned to 2: the pruned units of highest rank (0: rank 5, 2: rank 4) are kept again.
  assert.equal(layerSpace(8, 2).fit('00001111', rank), '10101111');
  // A protected unit pruned in the other target's mask is kept; another takes its place.
  assert.equal(layerSpace(8, 2, [1]).fit('10111111', rank), '11101011');
  // Balanced: each group reaches its share from its own units.
  const balanced = subBlockSpace(8, 4, [], true);
  const fitted = balanced.fit('00111111', [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(balanced.accepts(fitted), fitted);
  assert.deepEqual(kinds(fitted), { attn: 2, mlp: 2 });
  assert.throws(
    () => balanced.fit('0011', rank),
    (e: SearchOptionError) => e.option === 'mask',
  );
});

test('evop and evopress start from the seed masks they are given; a mask of another space is refused', () => {
  const space = layerSpace(16, 4);
  const seed = '0000111111111111';
  for (const name of ['evop', 'evopress'] as const) {
    const strategy = createStrategy(name, space, {
      budget: 100,
      seedMasks: [seed],
      evop: { greedy: false, climb: false },
    });
    const first = strategy.ask();
    assert.equal(first[0]!.mask, seed, name);
    if (name === 'evop') {
      // The seed alone first, then the rest of the first population, half of it the seed's mutations: one to three
      // swaps from it.
      assert.equal(first.length, 1);
      strategy.tell([{ ...first[0]!, fitness: 1 }]);
      const rest = strategy.ask();
      const near = rest.filter((c) => [...c.mask].filter((b, i) => b !== seed[i]).length <= 6);
      assert.ok(near.length >= 15, `${near.length} of ${rest.length} near the seed`);
    }
  }
  assert.throws(
    () => createStrategy('evop', space, { seedMasks: ['0001111111111111'] }),
    (e: SearchOptionError) => e.option === 'seedMasks' && /not a mask of this search space/.test(e.message),
  );
});

test('evop walks greedily on the screening windows, starts from where the walk ends and climbs from there', async () => {
  const space = layerSpace(26, 4);
  // A landscape where the walk ends short of a better mask one swap away.
  const landscape = new SyntheticLandscape(space, 1);
  const strategy = createStrategy('evop', space, { seed: 3, budget: 400 });
  const screened = new Map<string, number>();
  const measured = new Map<string, number>();
  const tell = async (candidates: Candidate[]) => {
    const results = await landscape.evaluate(candidates);
    const scored = candidates.map((c, i) => ({ ...c, fitness: results[i]!.nllSum / results[i]!.count }));
    strategy.tell(scored);
    for (const s of scored) (s.fidelity === 1 ? measured : screened).set(s.mask, s.fitness);
    return [...scored].sort((a, b) => a.fitness - b.fitness).map((s) => s.mask);
  };
  let walk = '1'.repeat(26);
  let lastStep: string[] = [];
  for (let step = 1; step <= 4; step++) {
    const candidates = strategy.ask();
    assert.deepEqual(
      candidates.map((c) => c.mask),
      space.removals(walk),
      `step ${step}: every one-more removal`,
    );
    assert.ok(candidates.every((c) => c.fidelity === 0.25));
    lastStep = await tell(candidates);
    walk = lastStep[0]!;
  }
  // As a generation's best offspring: the last step's 8 best screened masks measured on all windows, as they are.
  const start = strategy.ask();
  assert.deepEqual(
    start.map((c) => [c.mask, c.fidelity]),
    lastStep.slice(0, 8).map((m) => [m, 1]),
  );
  await tell(start);
  // The climb: the best mask's unscreened neighbours screened, the 8 best of them measured, a move when one is better.
  const best = () => [...measured].sort((a, b) => a[1] - b[1])[0]![0];
  const fresh = (mask: string) => space.neighbours(mask).filter((m) => !measured.has(m));
  let moves = 0;
  for (;;) {
    const from = best();
    const screening = strategy.ask();
    assert.deepEqual(
      screening.map((c) => [c.mask, c.fidelity]),
      fresh(from)
        .filter((m) => !screened.has(m))
        .map((m) => [m, 0.25]),
    );
    await tell(screening);
    const batch = strategy.ask();
    const byScreen = fresh(from).sort((a, b) => screened.get(a)! - screened.get(b)!);
    assert.deepEqual(
      batch.map((c) => [c.mask, c.fidelity]),
      byScreen.slice(0, 8).map((m) => [m, 1]),
    );
    await tell(batch);
    if (best() === from) break;
    moves++;
  }
  assert.ok(moves >= 1, 'the climb moved');
  assert.ok(strategy.spent <= 400 / 3);
  // Then the rest of the first population, random: about 1 in 21 is one swap from one of the ends (8 × 88 of the
  // 14,950 masks), where 5 in 9 mutations of them would be.
  const rest = strategy.ask();
  assert.equal(rest.length, 32 - Math.min(32, measured.size));
  assert.ok(rest.every((c) => c.fidelity === 1 && space.accepts(c.mask) && !measured.has(c.mask)));
  const oneSwap = (a: string, b: string) => [...a].filter((bit, i) => bit !== b[i]).length === 2;
  const near = rest.filter((c) => lastStep.slice(0, 8).some((end) => oneSwap(c.mask, end)));
  assert.ok(near.length < 3, `${near.length} of ${rest.length} one swap from the walk’s ends`);
  // A walk that could cost more than a third of the budget is skipped: 98 screenings × 0.25 > 40 / 3.
  const small = createStrategy('evop', space, { seed: 3, budget: 40 });
  assert.ok(small.ask().every((c) => c.fidelity === 1));
});

test('evop climbs only where a step costs no more than two generations', async () => {
  // 4 of 32 layers: a step screens 4 × 28 neighbours (28) and measures 8, more than two generations (2 × 16).
  const space = layerSpace(32, 4);
  const landscape = new SyntheticLandscape(space, 1);
  const strategy = createStrategy('evop', space, { seed: 3, budget: 400 });
  let candidates = strategy.ask();
  while (candidates.every((c) => c.fidelity < 1)) {
    const results = await landscape.evaluate(candidates);
    strategy.tell(candidates.map((c, i) => ({ ...c, fitness: results[i]!.nllSum / results[i]!.count })));
    candidates = strategy.ask();
  }
  const start = candidates.map((c) => c.mask);
  const results = await landscape.evaluate(candidates);
  strategy.tell(candidates.map((c, i) => ({ ...c, fitness: results[i]!.nllSum / results[i]!.count })));
  // No screening of the best start mask's neighbourhood: the rest of the first population comes next.
  const rest = strategy.ask();
  assert.equal(rest.length, 32 - start.length);
  assert.ok(rest.every((c) => c.fidelity === 1 && !start.includes(c.mask)));
});

test('evop’s final choice: its best masks measured on the validation windows too, the best there answered with its calibration fitness', async () => {
  const space = layerSpace(12, 4);
  const landscape = new SyntheticLandscape(space, 7);
  // Other text moves each mask's NLL by up to ±0.05, as much as the gaps between the best masks.
  const shift = (mask: string) => (Number.parseInt(mask, 2) % 101) / 1000 - 0.05;
  const measured = new Map<string, number>();
  const evaluator: Evaluator = {
    evaluate: async (candidates) =>
      (await landscape.evaluate(candidates)).map((r, i) => {
        const { mask, fidelity } = candidates[i]!;
        if (fidelity === 1) measured.set(mask, r.nllSum / r.count);
        return fidelity > 1 ? { ...r, nllSum: r.nllSum + shift(mask) * r.count } : r;
      }),
  };
  const strategy = createStrategy('evop', space, { seed: 1, budget: 600, validation: 4 });
  const outcome = await runSearch({ strategy, evaluator });
  const last = landscape.log.slice(-4);
  assert.ok(
    last.every((c) => c.fidelity === 4),
    'the last batch is on the validation windows',
  );
  assert.equal(landscape.log.filter((c) => c.fidelity > 1).length, 4, 'once');
  const ranked = [...measured].sort((a, b) => a[1] - b[1]).map(([mask]) => mask);
  assert.deepEqual(
    last.map((c) => c.mask),
    ranked.slice(0, 4),
    'the four best on the calibration windows',
  );
  const chosen = [...ranked.slice(0, 4)].sort(
    (a, b) => landscape.fitness(a) + shift(a) - (landscape.fitness(b) + shift(b)),
  )[0]!;
  assert.notEqual(chosen, ranked[0], 'the validation windows change the answer here');
  assert.deepEqual(outcome.best, { mask: chosen, fitness: measured.get(chosen) });
  assert.ok(outcome.history.at(-1)!.spent <= 600, 'the choice is paid for within the budget');
  // Without validation windows there is no choice to make.
  const plain = createStrategy('evop', space, { seed: 1, budget: 600 });
  const alone = await runSearch({ strategy: plain, evaluator: new SyntheticLandscape(space, 7) });
  assert.equal(alone.best!.mask, ranked[0]);
});

test('evop polishes its best mask: neighbours screened, then measured on all windows best-screened first, until a local optimum', async () => {
  const space = layerSpace(12, 4);
  const landscape = new SyntheticLandscape(space, 7);
  // Without the walk, whose swaps screen neighbourhoods of their own.
  const strategy = createStrategy('evop', space, {
    seed: 1,
    budget: 2000,
    evop: { patience: 2, greedy: false },
  });
  const outcome = await runSearch({ strategy, evaluator: landscape });
  const best = outcome.best!;
  const log = [...landscape.log];
  // Certified: every neighbour of the final best measured on every window, none better.
  const full = new Set(log.filter((c) => c.fidelity === 1).map((c) => c.mask));
  for (const n of space.neighbours(best.mask)) {
    assert.ok(full.has(n), `${n} measured on all windows`);
    assert.ok(landscape.fitness(n) >= best.fitness);
  }
  assert.ok(outcome.history.at(-1)!.spent < 2000, 'stopped on the certificate, not the budget');
  // After the last screening of a neighbourhood, its masks are measured on all windows in screened order.
  const last = log.findLastIndex((c) => c.fidelity < 1);
  const after = log.slice(last + 1).map((c) => c.mask);
  assert.ok(after.length > 0, 'the polish measured neighbours after screening them');
  const screened = await landscape.evaluate(after.map((mask) => ({ mask, fidelity: 0.25 })));
  const order = screened.map((r) => r.nllSum / r.count);
  const wasScreened = after.map((m) => log.some((c) => c.mask === m && c.fidelity < 1));
  const ranks = order.map((f, i) => (wasScreened[i] ? f : Number.POSITIVE_INFINITY));
  assert.deepEqual(
    ranks,
    [...ranks].sort((a, b) => a - b),
  );
});

test('evop’s polish, where the budget ends before a neighbourhood’s screening, screens what fits, likeliest first, and measures the best of it', async () => {
  const space = layerSpace(32, 8);
  const landscape = new SyntheticLandscape(space, 1);
  // At this budget the polish follows the first population; after three moves, the fourth neighbourhood's
  // unscreened masks (about 160, 40 full-evaluation equivalents) do not fit in the 25.75 left.
  const budget = 210;
  const strategy = createStrategy('evop', space, { seed: 1, budget, evop: { greedy: false } });
  const measured = new Map<string, number>();
  const screened = new Map<string, number>();
  /** The centre whose neighbourhood was screened in part. */
  let partial: string | undefined;
  let checked = false;
  let centre: string | undefined;
  for (;;) {
    const best = [...measured].sort((a, b) => a[1] - b[1])[0]?.[0];
    const room = budget - strategy.spent;
    const candidates = strategy.ask();
    if (candidates.length === 0) break;
    if (partial && !checked) {
      // The batch after it: the 8 best screened of the neighbours not yet measured on all windows.
      const fresh = space.neighbours(partial).filter((m) => !measured.has(m) && screened.has(m));
      const byScreen = fresh.sort((a, b) => screened.get(a)! - screened.get(b)!).slice(0, 8);
      assert.deepEqual(
        candidates.map((c) => [c.mask, c.fidelity]),
        byScreen.map((m) => [m, 1]),
      );
      checked = true;
    }
    if (best && candidates.every((c) => c.fidelity === 0.25 && space.neighbours(best).includes(c.mask))) {
      const unscreened = space.neighbours(best).filter((m) => !measured.has(m) && !screened.has(m));
      if (candidates.length < unscreened.length) {
        // Not the whole neighbourhood: as many of its unscreened masks as fit beside one batch of 8, those first
        // whose swap, made at the last neighbourhood's centre, screened best there.
        assert.equal(candidates.length, Math.floor((room - 8) / 0.25));
        assert.ok(candidates.length > 8);
        const sameSwap = (m: string) =>
          screened.get([...centre!].map((bit, u) => (m[u] !== best[u] ? m[u] : bit)).join(''));
        const likeliest = unscreened
          .filter((m) => sameSwap(m) !== undefined)
          .sort((a, b) => sameSwap(a)! - sameSwap(b)!)
          .slice(0, candidates.length);
        assert.ok(likeliest.length === candidates.length, 'every one guessed');
        assert.deepEqual(candidates.map((c) => c.mask).sort(), likeliest.sort());
        partial = best;
      } else centre = best;
    }
    const results = await landscape.evaluate(candidates);
    const scored = candidates.map((c, i) => ({ ...c, fitness: results[i]!.nllSum / results[i]!.count }));
    strategy.tell(scored);
    for (const s of scored) {
      if (s.fidelity === 1) measured.set(s.mask, s.fitness);
      else if (s.fidelity < 1) screened.set(s.mask, s.fitness);
    }
  }
  assert.ok(partial && checked, 'the polish screened part of a neighbourhood, then measured its best');
  assert.ok(strategy.spent <= budget);
});
