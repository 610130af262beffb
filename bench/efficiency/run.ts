/**
 * Search efficiency (issue 20): full-evaluation equivalents each search method spends before it first holds the
 * best mask any method finds (the exhaustive optimum where the space is small enough to enumerate), and in all.
 * stories-deep16 (and stories260K), CCDS calibration of 8 TinyStories windows × 64 tokens, budget 1000, every
 * method and search seed on the same evaluator and windows. One fitness cache per setting serves every search
 * (results are a pure function of mask and fidelity, so sharing it changes no search, only the wall time); the
 * counts are each strategy's own `spent`, cache hits included.
 * `npm run bench:efficiency [-- FILTER (a regular expression on the setting's label)] [--seeds 0,1,2] [--methods 'evop;evopress']`; results in
 * bench/results/efficiency.json (or efficiency-<filter>.json with a filter).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import {
  type Best,
  createStrategy,
  type GenerationRecord,
  MemoryFitnessCache,
  runSearch,
  type StrategyName,
  type StrategyOptions,
} from '@evop/core';
import { readCorpus } from '@evop/data';
import { PrefixEvaluator, planSearch, searchSpecSchema } from '@evop/pipeline';
import { InferencePool } from '@evop/runtime';
import { type BenchSetting, benchEvaluator, settingLabel } from '../bench-model.ts';
import { searchCalibration } from '../calibration.ts';
import { machine, median, resultName, saveResult, table } from '../report.ts';

const SETTINGS: BenchSetting[] = [
  { model: 'stories260K', granularity: 'sublayer', units: 4 },
  { model: 'stories-deep16', granularity: 'layer', units: 4 },
  { model: 'stories-deep16', granularity: 'layer', units: 6 },
  { model: 'stories-deep16', granularity: 'sublayer', units: 8 },
  { model: 'stories-deep16', granularity: 'sublayer', units: 12 },
];
/**
 * The methods compared: a strategy and its options. 'evop, tournament 3' is evop's default before this benchmark's
 * ablations (commit e8432e1 ran the others: ShortGPT seeding, population 16, patience 5 or 10, rescoring an eighth,
 * tournaments of 8 and 12, a screened first population; tournament 8 won and is the default now); 'evop, no climb'
 * is evop without the local search from the walk's end.
 */
const METHODS: { name: string; strategy: StrategyName; options: StrategyOptions }[] = [
  { name: 'evop', strategy: 'evop', options: {} },
  { name: 'evopress', strategy: 'evopress', options: {} },
  { name: 'evop, tournament 3', strategy: 'evop', options: { evop: { tournament: 3 } } },
  { name: 'evop, no climb', strategy: 'evop', options: { evop: { climb: false } } },
];
const PROTOCOL = { calibration: 8, clusters: 8, seqLen: 64, budget: 1000, maxMasks: 5000 };

const args = parseArgs({
  allowPositionals: true,
  options: { seeds: { type: 'string', default: '0,1,2,3,4' }, methods: { type: 'string' } },
});
const SEEDS = args.values.seeds.split(',').map(Number);
const methods = args.values.methods
  ? METHODS.filter((m) => args.values.methods!.split(';').includes(m.name))
  : METHODS;
const filter = args.positionals[0] ?? '';

interface Row {
  setting: string;
  method: string;
  seed: number;
  fitness: number;
  mask: string;
  /** Full-evaluation equivalents when the search first held the setting's best mask; null if it never did. */
  spentToBest: number | null;
  spent: number;
}
const firstHit = (history: GenerationRecord[], mask: string) =>
  history.find((g) => g.best?.mask === mask)?.spent ?? null;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const dir = mkdtempSync(join(tmpdir(), 'evop-efficiency-'));
const pool = new InferencePool({ config: runtimeConfig() });
const rows: Row[] = [];
const bests: { setting: string; masks: number; mask: string; fitness: number; exhaustive: boolean }[] = [];
try {
  const started = performance.now();
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  for (const setting of SETTINGS.filter((s) => new RegExp(filter).test(settingLabel(s)))) {
    const { layout, tokenizer, dense } = await benchEvaluator(setting.model, setting.granularity, pool, dir);
    const spec = searchSpecSchema.parse({
      target: { units: setting.units },
      granularity: setting.granularity,
      calibration: PROTOCOL.calibration,
      clusters: PROTOCOL.clusters,
      heldOut: 8,
      seqLen: PROTOCOL.seqLen,
      budget: PROTOCOL.budget,
    });
    const { space } = planSearch(layout, spec);
    const { search, influence } = await searchCalibration(dense, layout, [docs], tokenizer, spec);
    // No `validation` for the strategies: this counts evaluations to the best calibration mask, and evop's final
    // choice on the validation windows can answer another.
    const evaluator = new PrefixEvaluator(dense, search.windows, search.clusters, search.calibration);
    const cache = new MemoryFitnessCache();
    const search1 = (strategy: StrategyName, options: StrategyOptions) =>
      runSearch({
        strategy: createStrategy(strategy, space, { budget: spec.budget, influence, ...options }),
        evaluator,
        cache,
      });
    const exhaustive =
      space.maskCount <= PROTOCOL.maxMasks ? (await search1('exhaustive', {})).best! : undefined;
    const found: { method: string; seed: number; best: Best; history: GenerationRecord[] }[] = [];
    for (const method of methods)
      for (const seed of SEEDS) {
        const { best, history } = await search1(method.strategy, { ...method.options, seed });
        found.push({ method: method.name, seed, best: best!, history });
      }
    const best = exhaustive ?? found.map((f) => f.best).sort((a, b) => a.fitness - b.fitness)[0]!;
    bests.push({
      setting: settingLabel(setting),
      masks: space.maskCount,
      mask: best.mask,
      fitness: best.fitness,
      exhaustive: exhaustive !== undefined,
    });
    for (const f of found)
      rows.push({
        setting: settingLabel(setting),
        method: f.method,
        seed: f.seed,
        fitness: f.best.fitness,
        mask: f.best.mask,
        spentToBest: firstHit(f.history, best.mask),
        spent: f.history.at(-1)!.spent,
      });
    process.stdout.write(
      `${settingLabel(setting)}: done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
    );
  }

  const summary = bests.flatMap((b) =>
    methods.map((m) => {
      const rs = rows.filter((r) => r.setting === b.setting && r.method === m.name);
      const hits = rs.flatMap((r) => (r.spentToBest === null ? [] : [r.spentToBest]));
      return {
        setting: b.setting,
        method: m.name,
        hits: hits.length,
        seeds: rs.length,
        meanToBest: hits.length > 0 ? mean(hits) : null,
        medianToBest: hits.length > 0 ? median(hits) : null,
        meanSpent: mean(rs.map((r) => r.spent)),
        meanGap: mean(rs.map((r) => (r.fitness - b.fitness) / b.fitness)),
      };
    }),
  );
  process.stdout.write(
    `\n${table(
      ['setting', 'method', 'found best', 'to best (mean)', 'to best (median)', 'spent', 'gap'],
      summary.map((s) => [
        s.setting,
        s.method,
        `${s.hits}/${s.seeds}`,
        s.meanToBest === null ? '-' : s.meanToBest.toFixed(1),
        s.medianToBest === null ? '-' : s.medianToBest.toFixed(1),
        s.meanSpent.toFixed(1),
        `${(100 * s.meanGap).toFixed(3)} %`,
      ]),
    )}\n`,
  );
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`total ${seconds.toFixed(0)} s\n`);
  const saved = saveResult(resultName('efficiency', [filter]), {
    command: `npm run bench:efficiency -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machine(),
    runtime: pool.config,
    protocol: PROTOCOL,
    seeds: SEEDS,
    seconds,
    bests,
    summary,
    rows,
  });
  process.stdout.write(`saved ${saved}\n`);
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
