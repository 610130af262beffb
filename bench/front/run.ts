/**
 * What the quality–speed front's seeding saves: on stories-deep16 at layer granularity, for each search seed, evop
 * at the spec's target (4 of 16 layers) then `runFront` at 2, 6 and 8, each seeded with its searched neighbours'
 * best masks, all on one fitness cache ("front"); against evop at each target with no seeds, each on its own cache
 * ("independent"). Same calibration as bench:quality (32 CCDS windows of 64 tokens, calibration seed 0), budget
 * 400 per target. Per search: best calibration fitness, full-evaluation equivalents spent (the strategy's `spent`),
 * and those spent when it first reached the best fitness either mode found for that seed and target.
 * `npm run bench:front`; results in bench/results/front.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { type GenerationRecord, MemoryFitnessCache, type SearchSpace } from '@evop/core';
import { readCorpus } from '@evop/data';
import {
  PrefixEvaluator,
  planSearch,
  type RunSearchesOptions,
  runFront,
  type SearchResult,
  searchOnce,
  searchSpecSchema,
  validationFidelity,
} from '@evop/pipeline';
import { InferencePool } from '@evop/runtime';
import { benchEvaluator } from '../bench-model.ts';
import { searchCalibration } from '../calibration.ts';
import { machine, saveResult, table } from '../report.ts';

const SEEDS = [0, 1, 2];
/** bench:quality's calibration, budget and windows. */
const PROTOCOL = {
  model: 'stories-deep16',
  granularity: 'layer',
  target: 4,
  front: [2, 6, 8],
  budget: 400,
  calibration: 32,
  clusters: 8,
  seqLen: 64,
  sampling: 'ccds',
  calibrationSeed: 0,
} as const;
const MODES = ['front', 'independent'] as const;
type Mode = (typeof MODES)[number];

interface Row {
  mode: Mode;
  seed: number;
  target: number;
  fitness: number;
  mask: string;
  /** Full-evaluation equivalents the strategy spent (`spent`: screening on ¼ of the windows counts ¼). */
  spent: number;
  /** Candidates measured, at any fidelity (`evaluations`), and of them served by the fitness cache. */
  candidates: number;
  cacheHits: number;
  /** `spent` at the end of the generation that first reached the best fitness either mode found; null if none. */
  spentToHit: number | null;
  seconds: number;
}

const mean = (xs: number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const spentToHit = (history: GenerationRecord[], best: number) =>
  history.find((g) => g.best && g.best.fitness <= best + 1e-12 * Math.abs(best))?.spent ?? null;

const dir = mkdtempSync(join(tmpdir(), 'evop-front-'));
const pool = new InferencePool({ config: runtimeConfig() });
try {
  const started = performance.now();
  const { layout, tokenizer, dense } = await benchEvaluator(PROTOCOL.model, PROTOCOL.granularity, pool, dir);
  const specOf = (seed: number) =>
    searchSpecSchema.parse({
      target: { units: PROTOCOL.target },
      front: PROTOCOL.front.map((units) => ({ units })),
      granularity: PROTOCOL.granularity,
      seed,
      sampling: PROTOCOL.sampling,
      budget: PROTOCOL.budget,
      calibration: PROTOCOL.calibration,
      heldOut: PROTOCOL.clusters,
      clusters: PROTOCOL.clusters,
      seqLen: PROTOCOL.seqLen,
    });
  const tiny = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  const { search, influence } = await searchCalibration(dense, layout, [tiny], tokenizer, {
    ...specOf(0),
    seed: PROTOCOL.calibrationSeed,
  });
  const evaluator = new PrefixEvaluator(dense, search.windows, search.clusters, search.calibration);

  const rows: Row[] = [];
  const sharedCache: { seed: number; masks: number }[] = [];
  for (const seed of SEEDS) {
    const spec = specOf(seed);
    const { space, front } = planSearch(layout, spec);
    const options = (cache: MemoryFitnessCache): Omit<RunSearchesOptions, 'space'> => ({
      spec,
      evaluator,
      influence,
      validation: validationFidelity(search),
      cache,
      checkpoints: { load: async () => undefined, save: async () => {} },
      progress: { start: () => {}, generation: () => {}, stop: () => {} },
      signal: new AbortController().signal,
    });
    const independent = (s: SearchSpace) =>
      searchOnce(options(new MemoryFitnessCache()), { name: spec.strategy, key: spec.strategy, space: s });
    const results: Record<Mode, SearchResult[]> = { front: [], independent: [] };
    const cache = new MemoryFitnessCache();
    const main = await searchOnce(options(cache), { name: spec.strategy, key: spec.strategy, space });
    results.front = [main, ...(await runFront({ ...options(cache), spaces: front, main }))];
    sharedCache.push({ seed, masks: cache.size });
    for (const s of [space, ...front]) results.independent.push(await independent(s));
    for (const target of [PROTOCOL.target, ...PROTOCOL.front]) {
      const found = MODES.map((m) => results[m].find((r) => r.pruned === target)!);
      const best = Math.min(...found.map((r) => r.best.fitness));
      MODES.forEach((mode, i) => {
        const r = found[i]!;
        const last = r.history.at(-1)!;
        rows.push({
          mode,
          seed,
          target,
          fitness: r.best.fitness,
          mask: r.best.mask,
          spent: last.spent,
          candidates: last.evaluations,
          cacheHits: last.cacheHits,
          spentToHit: spentToHit(r.history, best),
          seconds: r.seconds,
        });
      });
    }
    process.stdout.write(`seed ${seed}: done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }

  const targets = [...PROTOCOL.front, PROTOCOL.target].sort((a, b) => a - b);
  const cells = (rs: Pick<Row, 'fitness' | 'spent' | 'spentToHit'>[]) => {
    const hits = rs.flatMap((r) => (r.spentToHit === null ? [] : [r.spentToHit]));
    return [
      mean(rs.map((r) => r.fitness)).toFixed(4),
      mean(rs.map((r) => r.spent)).toFixed(1),
      hits.length > 0 ? mean(hits).toFixed(1) : '-',
      `${hits.length}/${rs.length}`,
    ];
  };
  /** Per mode and seed, the sums over targets (to-hit only where every target was hit). */
  const totals = MODES.flatMap((mode) =>
    SEEDS.map((seed) => {
      const rs = rows.filter((r) => r.mode === mode && r.seed === seed);
      const hits = rs.map((r) => r.spentToHit);
      return {
        mode,
        seed,
        fitness: sum(rs.map((r) => r.fitness)),
        spent: sum(rs.map((r) => r.spent)),
        spentToHit: hits.every((h) => h !== null) ? sum(hits as number[]) : null,
        cacheHits: sum(rs.map((r) => r.cacheHits)),
      };
    }),
  );
  const header = MODES.flatMap((m) => [`${m} fitness`, 'evals', 'evals to hit', 'hits']);
  const body = targets.map((t) => [
    t,
    ...MODES.flatMap((m) => cells(rows.filter((r) => r.mode === m && r.target === t))),
  ]);
  const sumRow = [
    'sum',
    // The per-seed sums, summarised as each target's seeds are.
    ...MODES.flatMap((m) => cells(totals.filter((t) => t.mode === m))),
  ];
  process.stdout.write(
    `\nstories-deep16, layers pruned of 16, mean of ${SEEDS.length} seeds; evals in full-evaluation equivalents\n`,
  );
  process.stdout.write(`${table(['target', ...header], [...body, sumRow])}\n`);
  process.stdout.write(
    `cache hits: front ${sum(rows.filter((r) => r.mode === 'front').map((r) => r.cacheHits))}, independent ${sum(rows.filter((r) => r.mode === 'independent').map((r) => r.cacheHits))}\n`,
  );
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`total ${seconds.toFixed(0)} s\n`);
  const result = {
    command: 'nice -n 10 npm run bench:front',
    machine: {
      ...machine(),
      note: '2 cores shared with other work: seconds are noisy; fitness and counts are not',
    },
    runtime: pool.config,
    protocol: PROTOCOL,
    seeds: SEEDS,
    seconds,
    sharedCache,
    totals,
    rows,
  };
  process.stdout.write(`saved ${saveResult('front', result)}\n`);
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
