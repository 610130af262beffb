/**
 * Evaluator benchmark (issue: evaluator): on stories-deep16 with 64 windows × 256 tokens and 4 of 16 layers
 * pruned, per-mask cost of (a) the batched evaluator, (b) the naive way, (c) the pruned model's forward alone.
 * Targets: a/c ≤ 1.45 and b/a ≥ 3. Then (issue 20) (a′) the trie evaluator against (a) and (c) on a real GA
 * generation's masks and on 32 random masks: target a′/c ≤ 0.7 on the GA generation, NLL equal to (a)'s.
 * Prints tables; writes bench/results/evaluator.json.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtimeConfig, tokensPerRun } from '@evop/config';
import { machine, saveResult, table } from '../report.ts';
import { GENERATION, gaGeneration } from './generation.ts';
import { LARGE_VOCAB, PROTOCOL, setup } from './setup.ts';

const here = dirname(fileURLToPath(import.meta.url));
const labels = {
  a: 'evaluator (batched, NLL in graph)',
  b: 'naive (per mask, gates, logits to TS)',
  c: 'limit (pruned model forward)',
};
const runVariant = (v: string, model = 'stories-deep16', maskSet = 'protocol') => {
  const args = ['--import', 'tsx', join(here, 'variant.ts'), v, model, maskSet];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', env: process.env });
  return JSON.parse(out.trim().split('\n').at(-1)!);
};
const results = Object.fromEntries((['a', 'b', 'c'] as const).map((v) => [v, runVariant(v)]));
const a = results.a.secondsPerMask;
const ratios = { aOverC: a / results.c.secondsPerMask, bOverA: results.b.secondsPerMask / a };
const nllAgreement = Math.max(
  ...results.a.nll.map((x: number, i: number) => Math.abs(x - results.b.nll[i]) / results.b.nll[i]),
);
console.log(`evaluator benchmark: ${JSON.stringify(PROTOCOL)}`);
console.log(
  table(
    ['variant', 's/mask', 'masks/s', 'tokens/s', 'peak RSS MiB'],
    (['a', 'b', 'c'] as const).map((v) => [
      `(${v}) ${labels[v]}`,
      results[v].secondsPerMask.toFixed(3),
      results[v].masksPerSecond.toFixed(2),
      Math.round(results[v].tokensPerSecond),
      Math.round(results[v].peakRssMiB),
    ]),
  ),
);
console.log(
  `a/c = ${ratios.aOverC.toFixed(3)} (target ≤ 1.45), b/a = ${ratios.bOverA.toFixed(2)} (target ≥ 3); max |Δnll| a vs b ${nllAgreement.toExponential(1)}`,
);
// The same network with a real LLM's vocabulary: where the naive way's logits cost what they cost in practice.
const large = { a: runVariant('a', 'large-vocab'), b: runVariant('b', 'large-vocab') };
const largeRatio = large.b.secondsPerMask / large.a.secondsPerMask;
console.log(
  `\nsame network, ${LARGE_VOCAB}-token vocabulary (random embedding, speed only), 16 windows × ${PROTOCOL.seqLen} tokens:`,
);
console.log(
  table(
    ['variant', 's/mask', 'tokens/s', 'peak RSS MiB'],
    (['a', 'b'] as const).map((v) => [
      `(${v}) ${labels[v]}`,
      large[v].secondsPerMask.toFixed(3),
      Math.round(large[v].tokensPerSecond),
      Math.round(large[v].peakRssMiB),
    ]),
  ),
);
console.log(`b/a = ${largeRatio.toFixed(2)}`);
// The trie evaluator on masks that share prefixes as a search's do, and on masks that share little.
const { model, layout } = setup();
const generation = await gaGeneration(model, layout);
const trie = Object.fromEntries(
  (['ga', 'random'] as const).map((set) => [
    set,
    Object.fromEntries((['a', 't', 'c'] as const).map((v) => [v, runVariant(v, 'stories-deep16', set)])),
  ]),
);
const trieRatios = Object.fromEntries(
  Object.entries(trie).map(([set, r]) => [
    set,
    {
      tOverC: r.t.secondsPerMask / r.c.secondsPerMask,
      tOverA: r.t.secondsPerMask / r.a.secondsPerMask,
      aOverC: r.a.secondsPerMask / r.c.secondsPerMask,
      identicalNll: r.t.nll.every((x: number, i: number) => x === r.a.nll[i]),
    },
  ]),
);
console.log(
  `\ntrie evaluator (a′): GA generation ${GENERATION} of evop's search (${generation.length} masks) and 32 random masks, ${PROTOCOL.windows} windows × ${PROTOCOL.seqLen} tokens:`,
);
console.log(
  table(
    ['masks', 'variant', 's/mask', 'peak RSS MiB'],
    Object.entries(trie).flatMap(([set, r]) =>
      (['a', 't', 'c'] as const).map((v) => [
        set,
        v === 't' ? '(a′) trie evaluator' : `(${v}) ${labels[v]}`,
        r[v].secondsPerMask.toFixed(3),
        Math.round(r[v].peakRssMiB),
      ]),
    ),
  ),
);
for (const [set, r] of Object.entries(trieRatios))
  console.log(
    `${set}: a′/c = ${r.tOverC.toFixed(3)}${set === 'ga' ? ' (target ≤ 0.7)' : ''}, a′/a = ${r.tOverA.toFixed(3)}, a/c = ${r.aOverC.toFixed(3)}; NLL a′ = a to the last bit: ${r.identicalNll}`,
  );
// The same generation as the search measures it: on the windows it is screened on, from a cold trie evaluator and
// from one that has evaluated the search's earlier batches (the states a search's evaluator holds by then).
const inSitu = Object.fromEntries(
  (
    [
      ['c', 'ga-screen'],
      ['t', 'ga-screen'],
      ['t', 'ga-warm'],
    ] as const
  ).map(([v, set]) => [`${v} ${set}`, runVariant(v, 'stories-deep16', set)]),
);
const screen = inSitu['c ga-screen'];
// The pruned forwards' work in unit runs: each mask's kept layers, once per run of windows as the trie packs them;
// the trie's runs with a unit kept against it (its runs of pruned units only add a residual sum each).
const runs = Math.ceil(
  screen.windows / Math.floor(tokensPerRun(runtimeConfig(), layout.vocabSize) / PROTOCOL.seqLen),
);
const prunedUnitRuns = generation.length * (PROTOCOL.layers - PROTOCOL.pruned) * runs;
const inSituRatios = {
  coldOverC: inSitu['t ga-screen'].secondsPerMask / screen.secondsPerMask,
  warmOverC: inSitu['t ga-warm'].secondsPerMask / screen.secondsPerMask,
  coldWork: inSitu['t ga-screen'].unitRuns.kept / prunedUnitRuns,
  warmWork: inSitu['t ga-warm'].unitRuns.kept / prunedUnitRuns,
  identicalNll: inSitu['t ga-warm'].nll.every((x: number, i: number) => x === inSitu['t ga-screen'].nll[i]),
};
console.log(
  `
in the search: generation ${GENERATION} on the ${screen.windows} windows it is screened on; (a′) from a cold trie evaluator and after the search's earlier batches (EVOP_TRIE_CACHE_MB ${runtimeConfig().trieCacheBytes / 2 ** 20}):`,
);
console.log(
  table(
    ['variant', 's/mask', 'unit runs: kept / all pruned', 'kept of the pruned forwards’', 'peak RSS MiB'],
    [
      [
        '(c) pruned forwards',
        screen.secondsPerMask.toFixed(3),
        prunedUnitRuns,
        '1',
        Math.round(screen.peakRssMiB),
      ],
      ...(['ga-screen', 'ga-warm'] as const).map((set) => {
        const r = inSitu[`t ${set}`];
        return [
          `(a′) trie evaluator, ${set === 'ga-warm' ? 'after the earlier batches' : 'cold'}`,
          r.secondsPerMask.toFixed(3),
          `${r.unitRuns.kept} / ${r.unitRuns.pruned}`,
          (r.unitRuns.kept / prunedUnitRuns).toFixed(3),
          Math.round(r.peakRssMiB),
        ];
      }),
    ],
  ),
);
console.log(
  `a′/c = ${inSituRatios.coldOverC.toFixed(3)} cold, ${inSituRatios.warmOverC.toFixed(3)} after the earlier batches (target ≤ 0.7); NLL warm = cold to the last bit: ${inSituRatios.identicalNll}`,
);
const path = saveResult('evaluator', {
  protocol: PROTOCOL,
  runtime: runtimeConfig(),
  machine: machine(),
  results,
  ratios,
  nllAgreement,
  largeVocab: { vocab: LARGE_VOCAB, windows: 16, results: large, bOverA: largeRatio },
  trie: { generation: GENERATION, gaMasks: generation, results: trie, ratios: trieRatios },
  inSitu: { results: inSitu, prunedUnitRuns, ratios: inSituRatios },
  date: new Date().toISOString(),
});
console.log(`saved ${path}`);
