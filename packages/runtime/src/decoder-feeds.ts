import type { DecoderLayout } from '@evop/onnx';
import { float32, int64, type WireFeeds } from './wire-tensor.ts';

export interface DecoderBatch {
  /** Token ids, row-major [rows, seqLen]. */
  ids: ArrayLike<number>;
  rows: number;
  seqLen: number;
  /** Per row, how many leading positions are real tokens (the rest is right padding); default all. */
  lengths?: readonly number[];
  /** Tokens already in the KV cache; the past inputs are then left out, to be carried from the last run. */
  pastLength?: number;
}

/**
 * The feeds a decoder export expects for a batch: `input_ids`, an `attention_mask` over past + new positions,
 * `position_ids` continuing after the past, and, for a fresh sequence, zero-length past tensors
 * [B, kvHeads, 0, headSize] for every KV-cache input.
 */
export function decoderFeeds(layout: DecoderLayout, batch: DecoderBatch): WireFeeds {
  const { rows: B, seqLen: T } = batch;
  const P = batch.pastLength ?? 0;
  const feeds: WireFeeds = {};
  for (const input of layout.inputs) {
    if (input.name === layout.inputIds) feeds[input.name] = int64(batch.ids, [B, T]);
    else if (input.name === layout.attentionMask) {
      const mask = new Array<number>(B * (P + T));
      for (let b = 0; b < B; b++) {
        const valid = P + (batch.lengths?.[b] ?? T);
        for (let t = 0; t < P + T; t++) mask[b * (P + T) + t] = t < valid ? 1 : 0;
      }
      feeds[input.name] = int64(mask, [B, P + T]);
    } else if (input.name === layout.positionIds) {
      const positions = new Array<number>(B * T);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = P + t;
      feeds[input.name] = int64(positions, [B, T]);
    } else if (P === 0) {
      const dims = input.shape.map((d, i) => (i === 0 ? B : typeof d === 'number' ? d : 0));
      feeds[input.name] = float32(new Float32Array(0), dims);
    }
  }
  return feeds;
}

/** For decoding with a cache: each past input is fed the matching present output of the previous run. */
export function cacheCarry(layout: DecoderLayout): Record<string, string> {
  const carry: Record<string, string> = {};
  for (const block of layout.blocks)
    block.pastInputs.forEach((name, i) => {
      carry[name] = block.presentOutputs[i]!;
    });
  return carry;
}
