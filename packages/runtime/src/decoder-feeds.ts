import type { DecoderLayout } from '@evop/onnx';
import { floatZeros, integers, type WireFeeds } from './wire-tensor.ts';

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
 * The feeds a decoder export expects for a batch, each in the element type the input declares: `input_ids`, an
 * `attention_mask` over past + new positions, `position_ids` (and `cache_position`) continuing after the past,
 * `token_type_ids` of zeros, and, for a fresh sequence, zero-length past tensors [B, kvHeads, 0, headSize] for
 * every KV-cache input.
 */
export function decoderFeeds(layout: DecoderLayout, batch: DecoderBatch): WireFeeds {
  const { rows: B, seqLen: T } = batch;
  const P = batch.pastLength ?? 0;
  const feeds: WireFeeds = {};
  for (const input of layout.inputs) {
    const ints = (values: ArrayLike<number>, dims: number[]) => integers(values, dims, input.elemType);
    if (input.name === layout.inputIds) feeds[input.name] = ints(batch.ids, [B, T]);
    else if (input.name === layout.attentionMask) {
      const mask = new Array<number>(B * (P + T));
      for (let b = 0; b < B; b++) {
        const valid = P + (batch.lengths?.[b] ?? T);
        for (let t = 0; t < P + T; t++) mask[b * (P + T) + t] = t < valid ? 1 : 0;
      }
      feeds[input.name] = ints(mask, [B, P + T]);
    } else if (input.name === layout.positionIds) {
      const positions = new Array<number>(B * T);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = P + t;
      feeds[input.name] = ints(positions, [B, T]);
    } else if (input.name === layout.cachePosition) {
      feeds[input.name] = ints(
        Array.from({ length: T }, (_, t) => P + t),
        [T],
      );
    } else if (input.name === layout.tokenTypeIds) {
      feeds[input.name] = ints(new Array<number>(B * T).fill(0), [B, T]);
    } else if (P === 0) {
      const dims = input.shape.map((d, i) => (i === 0 ? B : typeof d === 'number' ? d : 0));
      feeds[input.name] = floatZeros(dims, input.elemType, input.name);
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

/** Whether the model takes a KV cache, so that decoding one token at a time is possible. */
export function hasCache(layout: DecoderLayout): boolean {
  return layout.blocks.some((b) => b.pastInputs.length > 0);
}
