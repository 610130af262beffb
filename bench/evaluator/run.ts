/**
 * Evaluator benchmark (issue: evaluator): on stories-deep16 with 64 windows × 256 tokens and 4 of 16 layers
 * pruned, per-mask cost of (a) the batched evaluator, (b) the naive way, (c) the pruned model's forward alone.
 * Targets: a/c ≤ 1.45 and b/a ≥ 3. Prints a table; writes bench/results/evaluator.json.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtimeConfig } from '@evop/config';
import { machine, saveResult, table } from '../report.ts';
import { PROTOCOL } from './setup.ts';

const here = dirname(fileURLToPath(import.meta.url));
const labels = {
  a: 'evaluator (batched, NLL in graph)',
  b: 'naive (per mask, gates, logits to TS)',
  c: 'limit (pruned model forward)',
};
const results = Object.fromEntries(
  (['a', 'b', 'c'] as const).map((v) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(here, 'variant.ts'), v], {
      encoding: 'utf8',
      env: process.env,
    });
    return [v, JSON.parse(out.trim().split('\n').at(-1)!)];
  }),
);
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
const path = saveResult('evaluator', {
  protocol: PROTOCOL,
  runtime: runtimeConfig(),
  machine: machine(),
  results,
  ratios,
  nllAgreement,
  date: new Date().toISOString(),
});
console.log(`saved ${path}`);
