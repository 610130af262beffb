import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DataType,
  type DecoderLayout,
  DISCOVERY_VERSION,
  derivableIn,
  GATE_INPUT,
  IGNORE_LABEL,
  INSTRUMENT_VERSION,
  LABELS_INPUT,
  LAST_LOGITS_OUTPUT,
  type LoadedModel,
  ModelError,
  ORIGINAL_LOGITS_OUTPUT,
  selfCheckGraph,
  unitsOf,
  writeModel,
} from '@evop/onnx';
import { decoderFeeds } from './decoder-feeds.ts';
import { assertFinite } from './finite-outputs.ts';
import type { InferencePool } from './inference-pool.ts';
import { float32, int64 } from './wire-tensor.ts';

/** What the self-check measured: how far the search graph is from the model, how much the weakest unit moves it. */
export interface LayoutCheck {
  /** Largest |logit| difference with every unit kept, relative to 1 + the largest |logit|. */
  keptDifference: number;
  /** The unit whose removal changes the logits least, and by how much (same scale). */
  weakest: { unit: string; change: number };
}

const TOKENS = 8;

/**
 * Never silently wrong: before a search relies on a layout, the search graph with every unit kept must give the
 * model's own logits, and removing any one unit must change them. Run once per model file and evop version
 * (the result is kept in `dir`); throws a ModelError saying what was found when the layout fails.
 */
export async function checkLayout(
  pool: InferencePool,
  model: LoadedModel,
  layout: DecoderLayout,
  dir: string,
): Promise<LayoutCheck> {
  const marker = join(dir, `layout-check-d${DISCOVERY_VERSION}-i${INSTRUMENT_VERSION}.json`);
  if (existsSync(marker)) return JSON.parse(readFileSync(marker, 'utf8')) as LayoutCheck;
  const units = unitsOf(layout, 'sublayer');
  // Removed as soon as measured: the pool's threads release sessions of files that are gone.
  const path = join(dir, `self-check-${process.pid}-${Date.now()}.onnx`);
  writeModel(selfCheckGraph(derivableIn(model, dir), layout), path, { externalData: 'reference' });
  const maskWithout = (u: number) => units.map((_, i) => (i === u ? '0' : '1')).join('');
  const masks = [maskWithout(-1), ...units.map((_, u) => maskWithout(u))];
  const ids = Array.from({ length: TOKENS }, (_, t) => 1 + ((t * 7919) % Math.max(1, layout.vocabSize - 1)));
  const gated: Float32Array[] = [];
  let original: Float32Array | undefined;
  try {
    const perRun = Math.max(1, Math.min(32, Math.floor(pool.config.maxBatchTokens / TOKENS)));
    for (let start = 0; start < masks.length; start += perRun) {
      const chunk = masks.slice(start, start + perRun);
      const feeds = decoderFeeds(layout, {
        ids: chunk.flatMap(() => ids),
        rows: chunk.length,
        seqLen: TOKENS,
      });
      feeds[GATE_INPUT] = float32(Float32Array.from(chunk.join(''), Number), [chunk.length, units.length]);
      feeds[LABELS_INPUT] = int64(new Array(chunk.length * TOKENS).fill(IGNORE_LABEL), [
        chunk.length,
        TOKENS,
      ]);
      const out = await pool.run(path, feeds, [LAST_LOGITS_OUTPUT, ORIGINAL_LOGITS_OUTPUT]);
      const logits = out[LAST_LOGITS_OUTPUT]!.data as Float32Array;
      original ??= (out[ORIGINAL_LOGITS_OUTPUT]!.data as Float32Array).slice(0, layout.vocabSize);
      chunk.forEach((_, r) => {
        gated.push(logits.slice(r * layout.vocabSize, (r + 1) * layout.vocabSize));
      });
    }
  } finally {
    rmSync(path, { force: true });
  }
  assertFinite(original!, 'logits', () => "the self-check's tokens");
  const scale = 1 + Math.max(...original!.map(Math.abs));
  const difference = (a: Float32Array, b: Float32Array) =>
    a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0) / scale;
  const half = layout.streamType === DataType.FLOAT16;
  const keptDifference = difference(gated[0]!, original!);
  if (!(keptDifference <= (half ? 1e-2 : 1e-4)))
    throw new ModelError(
      'unknown-pattern',
      `self-check failed: with every unit kept, evop's search graph gives logits ${keptDifference.toExponential(1)} ` +
        `(relative) away from the model's own; the layout evop found (${units.map((u) => u.id).join(', ')}) does not ` +
        'describe this model',
    );
  const changes = units.map((unit, u) => ({ unit: unit.id, change: difference(gated[u + 1]!, gated[0]!) }));
  const weakest = changes.reduce((a, b) => (b.change < a.change ? b : a));
  if (!(weakest.change > (half ? 1e-3 : 1e-6)))
    throw new ModelError(
      'unknown-pattern',
      `self-check failed: removing ${weakest.unit} does not change the model's logits; what evop took for a residual ` +
        `block ('${layout.blocks[units.find((u) => u.id === weakest.unit)!.blocks[0]!]!.branch}') is not one`,
    );
  const result: LayoutCheck = { keptDifference, weakest };
  writeFileSync(marker, JSON.stringify(result));
  return result;
}
