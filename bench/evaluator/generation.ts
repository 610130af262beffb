/**
 * The masks of a real GA generation: evop's search (seed 0, 4 of stories-deep16's 16 layers) run on 16 TinyStories
 * windows × 128 tokens with the gated evaluator, recording the masks of each batch it asks for; the offspring
 * batch of generation GENERATION is the benchmark's (written to the work folder once, so every variant process
 * reads the same masks).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { type Candidate, createStrategy, runSearch } from '@evop/core';
import { Llama2cTokenizer, readCorpus, type TokenWindows, windowsFromDocuments } from '@evop/data';
import type { DecoderLayout, LoadedModel } from '@evop/onnx';
import { PrefixEvaluator, planSearch, searchSpecSchema } from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { PROTOCOL, workDir } from './setup.ts';

/** Screened offspring of the fifth generation: the population has begun to agree on its prefixes, not yet converged. */
export const GENERATION = 5;

/**
 * Every batch evop's search (seed 0) asks for on `windows`, in order, each candidate's mask and fidelity; the
 * search runs on the gated evaluator of a pool of its own, caching graphs under `cacheDir`.
 */
export async function recordSearch(
  model: LoadedModel,
  layout: DecoderLayout,
  search: { granularity: 'layer' | 'sublayer'; units: number; budget: number },
  windows: TokenWindows,
  cacheDir: string,
): Promise<Candidate[][]> {
  const { granularity, units, budget } = search;
  const { space } = planSearch(layout, searchSpecSchema.parse({ target: { units }, granularity, budget }));
  const pool = new InferencePool({ config: runtimeConfig() });
  const batches: Candidate[][] = [];
  try {
    const onnx = await OnnxEvaluator.create({ pool, model, layout, granularity, cacheDir });
    const scorer = new PrefixEvaluator(onnx, windows);
    await runSearch({
      strategy: createStrategy('evop', space, { seed: 0, budget }),
      evaluator: {
        evaluate: (candidates, signal) => {
          batches.push(candidates.map(({ mask, fidelity }) => ({ mask, fidelity })));
          return scorer.evaluate(candidates, signal);
        },
      },
    });
  } finally {
    await pool.close();
  }
  return batches;
}

/**
 * Every batch evop's search asked for, in order, up to and with the screened offspring of generation GENERATION:
 * `before` are the batches a search evaluates ahead of it, `generation` that batch.
 */
export async function gaHistory(
  model: LoadedModel,
  layout: DecoderLayout,
): Promise<{ before: Candidate[][]; generation: Candidate[] }> {
  const path = join(workDir, `ga-history-${GENERATION}.json`);
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8'));
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories-deep16/tok512.bin'));
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  const batches = await recordSearch(
    model,
    layout,
    { granularity: 'layer', units: PROTOCOL.pruned, budget: 400 },
    windowsFromDocuments(docs, tokenizer, 128, 16),
    workDir,
  );
  // Offspring batches are screened below full fidelity, after the initial population (the first batch measured on
  // all windows; the greedy walk's steps before it are screened too).
  const population = batches.findIndex((b) => b.every((c) => c.fidelity === 1));
  const screened = batches.flatMap((b, i) => (i > population && b.every((c) => c.fidelity < 1) ? [i] : []));
  const at = screened[GENERATION - 1]!;
  const history = { before: batches.slice(0, at), generation: batches[at]! };
  writeFileSync(path, JSON.stringify(history));
  return history;
}

/** The distinct masks of generation GENERATION's screened offspring. */
export async function gaGeneration(model: LoadedModel, layout: DecoderLayout): Promise<string[]> {
  const { generation } = await gaHistory(model, layout);
  return [...new Set(generation.map((c) => c.mask))];
}
