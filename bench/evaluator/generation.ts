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
import { Llama2cTokenizer, readCorpus, windowsFromDocuments } from '@evop/data';
import type { DecoderLayout, LoadedModel } from '@evop/onnx';
import { PrefixEvaluator, planSearch, searchSpecSchema } from '@evop/pipeline';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { PROTOCOL, workDir } from './setup.ts';

/** Screened offspring of the fifth generation: the population has begun to agree on its prefixes, not yet converged. */
export const GENERATION = 5;

export async function gaGeneration(model: LoadedModel, layout: DecoderLayout): Promise<string[]> {
  const path = join(workDir, `ga-generation-${GENERATION}.json`);
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as string[];
  const spec = searchSpecSchema.parse({
    target: { units: PROTOCOL.pruned },
    granularity: 'layer',
    budget: 400,
  });
  const { space } = planSearch(layout, spec);
  const pool = new InferencePool({ config: runtimeConfig() });
  const onnx = await OnnxEvaluator.create({ pool, model, layout, granularity: 'layer', cacheDir: workDir });
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories-deep16/tok512.bin'));
  const docs = readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'));
  const scorer = new PrefixEvaluator(onnx, windowsFromDocuments(docs, tokenizer, 128, 16));
  const batches: Candidate[][] = [];
  await runSearch({
    strategy: createStrategy('evop', space, { seed: 0, budget: spec.budget }),
    evaluator: {
      evaluate: (candidates, signal) => {
        batches.push([...candidates]);
        return scorer.evaluate(candidates, signal);
      },
    },
  });
  await pool.close();
  // Offspring batches are screened below full fidelity; the first batch is the initial population.
  const offspring = batches.filter((b) => b.every((c) => c.fidelity < 1));
  const masks = [...new Set(offspring[GENERATION - 1]!.map((c) => c.mask))];
  writeFileSync(path, JSON.stringify(masks));
  return masks;
}
