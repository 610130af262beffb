import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { type Candidate, createStrategy, runSearch } from '@evop/core';
import { readCorpus, windowsFromDocuments } from '@evop/data';
import { PrefixEvaluator, planSearch, searchSpecSchema } from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { benchModel } from '../bench-model.ts';

const [granularity, units, budget] = [
  process.argv[2] as 'layer' | 'sublayer',
  Number(process.argv[3]),
  Number(process.argv[4] ?? 400),
];
const dir = mkdtempSync(join(tmpdir(), 'pw-'));
const { model, layout, tokenizer } = benchModel('stories-deep16', dir);
const spec = searchSpecSchema.parse({ target: { units }, granularity, budget });
const { space } = planSearch(layout, spec);
const pool = new InferencePool({ config: runtimeConfig() });
const onnx = await OnnxEvaluator.create({ pool, model, layout, granularity, cacheDir: dir });
const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
const W = 16;
const windows = windowsFromDocuments(docs, tokenizer, 64, W);
const scorer = new PrefixEvaluator(onnx, windows);
const batches: Candidate[][] = [];
await runSearch({
  strategy: createStrategy('evop', space, { seed: 0, budget }),
  evaluator: {
    evaluate: (c, s) => {
      batches.push([...c]);
      return scorer.evaluate(c, s);
    },
  },
});
await pool.close();
// Work in kept units run, per window: pruned forwards vs per-batch trie vs trie with states kept across batches.
let pruned = 0,
  trie = 0,
  across = 0;
const seen = new Set<string>();
for (const b of batches) {
  const nodes = new Map<number, Set<string>>();
  for (const c of b) {
    const w = Math.max(1, Math.round(c.fidelity * W));
    for (let i = 0; i < c.mask.length; i++)
      if (c.mask[i] === '1') {
        pruned += w;
        const p = c.mask.slice(0, i + 1);
        for (let x = 0; x < w; x++) {
          const set = nodes.get(x) ?? new Set();
          nodes.set(x, set);
          if (!set.has(p)) {
            set.add(p);
            trie++;
          }
          const k = `${w}:${x}:${p}`;
          if (!seen.has(k)) {
            seen.add(k);
            across++;
          }
        }
      }
  }
}
const gens = batches.map((b) => b.length);
console.log(
  JSON.stringify({
    granularity,
    units,
    budget,
    batches: batches.length,
    sizes: gens.join(','),
    pruned,
    trieRatio: trie / pruned,
    acrossRatio: across / pruned,
    distinctPrefixStates: seen.size,
  }),
);
