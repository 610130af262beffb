/**
 * How much of a whole search's pruned-forward work prefix sharing can spare, counted rather than timed: evop's
 * search on stories-deep16 (seed 0, 16 TinyStories windows × 64 tokens) records every batch; then, in kept units
 * run per window, the pruned forwards (every mask's kept units), a trie per batch (each kept prefix once per batch
 * and window) and a trie whose states are all kept across batches (each prefix once per window and fidelity, as
 * an unbounded EVOP_TRIE_CACHE_MB would give). The ratios bound what the trie evaluator's work can be.
 * `npm run bench:prefix-work -- [layer|sublayer] [units] [budget]` (default layer 4 400); prints and saves
 * bench/results/prefix-work-<granularity>-<units>.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import type { Candidate } from '@evop/core';
import { readCorpus, windowsFromDocuments } from '@evop/data';
import { prefixLength } from '@evop/pipeline';
import { benchModel } from '../bench-model.ts';
import { machine, saveResult } from '../report.ts';
import { recordSearch } from './generation.ts';

const granularity = (process.argv[2] ?? 'layer') as 'layer' | 'sublayer';
const units = Number(process.argv[3] ?? 4);
const budget = Number(process.argv[4] ?? 400);
const WINDOWS = 16;

const dir = mkdtempSync(join(tmpdir(), 'evop-prefix-work-'));
let batches: Candidate[][];
try {
  const { model, layout, tokenizer } = benchModel('stories-deep16', dir);
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  batches = await recordSearch(
    model,
    layout,
    { granularity, units, budget },
    windowsFromDocuments(docs, tokenizer, 64, WINDOWS),
    dir,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

let pruned = 0;
let perBatch = 0;
let acrossBatches = 0;
const kept = new Set<string>();
for (const batch of batches) {
  const inBatch = new Set<string>();
  for (const { mask, fidelity } of batch) {
    const windows = prefixLength(fidelity, WINDOWS);
    for (let u = 0; u < mask.length; u++) {
      if (mask[u] !== '1') continue;
      const prefix = mask.slice(0, u + 1);
      for (let w = 0; w < windows; w++) {
        pruned++;
        if (!inBatch.has(`${w}:${prefix}`)) {
          inBatch.add(`${w}:${prefix}`);
          perBatch++;
        }
        // The windows a fidelity measures are a run of their own: states are shared within a fidelity.
        if (!kept.has(`${windows}:${w}:${prefix}`)) {
          kept.add(`${windows}:${w}:${prefix}`);
          acrossBatches++;
        }
      }
    }
  }
}
const result = {
  granularity,
  units,
  budget,
  windows: WINDOWS,
  batches: batches.length,
  prunedForwardUnits: pruned,
  triePerBatch: perBatch / pruned,
  trieAcrossBatches: acrossBatches / pruned,
  statesAcrossBatches: kept.size,
};
console.log(
  `${granularity} ${units}, budget ${budget}, ${batches.length} batches: a trie per batch runs ${result.triePerBatch.toFixed(3)} of the pruned forwards' kept units, states kept across batches ${result.trieAcrossBatches.toFixed(3)} (${kept.size} window × prefix states in all)`,
);
console.log(`saved ${saveResult(`prefix-work-${granularity}-${units}`, { ...result, machine: machine() })}`);
