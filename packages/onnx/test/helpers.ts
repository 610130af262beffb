import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer } from '@evop/data';
import * as ort from 'onnxruntime-node';
import {
  type DecoderLayout,
  encodeModel,
  GATE_INPUT,
  IGNORE_LABEL,
  LABELS_INPUT,
  llama2cToOnnx,
  type ModelProto,
  readLlama2cCheckpoint,
} from '../src/index.ts';

export const STORIES260K = 'stories260K/stories260K.bin';
export const DEEP16 = 'stories-deep16/stories-deep16.bin';
export const HFSTYLE = 'stories260K-onnx-hfstyle/model.onnx';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'evop-onnx-test-'));
}

const built = new Map<string, ModelProto>();
/** The ONNX model built from a llama2.c checkpoint in the shared data (memoised per file). */
export function builtModel(file: string): ModelProto {
  let model = built.get(file);
  if (!model) {
    model = llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile(file)));
    built.set(file, model);
  }
  return model;
}

export function session(model: ModelProto | string): Promise<ort.InferenceSession> {
  const options = { logSeverityLevel: 3 as const, intraOpNumThreads: 1 };
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(encodeModel(model), options);
}

const int64 = (values: number[], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

/**
 * Feeds for rows of equal length `ids` from position 0: every position attended, zero-length KV caches.
 * `past` replaces the caches (and shifts positions) for decoding one step with a cache.
 */
export function feeds(
  layout: DecoderLayout,
  rows: number[][],
  past?: { tensors: Record<string, ort.Tensor>; length: number },
): Record<string, ort.Tensor> {
  const B = rows.length;
  const T = rows[0]!.length;
  const P = past?.length ?? 0;
  const out: Record<string, ort.Tensor> = {};
  for (const input of layout.inputs) {
    if (input.name === layout.inputIds) out[input.name] = int64(rows.flat(), [B, T]);
    else if (input.name === layout.attentionMask)
      out[input.name] = int64(new Array(B * (P + T)).fill(1), [B, P + T]);
    else if (input.name === layout.positionIds)
      out[input.name] = int64(
        rows.flatMap(() => Array.from({ length: T }, (_, t) => P + t)),
        [B, T],
      );
    else if (past) out[input.name] = past.tensors[input.name]!;
    else {
      const dims = input.shape.map((d, i) => (i === 0 ? B : typeof d === 'number' ? d : 0));
      out[input.name] = new ort.Tensor('float32', new Float32Array(0), dims);
    }
  }
  return out;
}

/** Summed next-token NLL of each row, in float64 from full logits [B, T, V]: the independent reference. */
export function nllFromLogits(logits: Float32Array, rows: number[][], vocab: number): number[] {
  return rows.map((ids, b) => {
    let nll = 0;
    for (let t = 0; t < ids.length - 1; t++) {
      const base = (b * ids.length + t) * vocab;
      let max = Number.NEGATIVE_INFINITY;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits[base + v]!);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[base + v]! - max);
      nll += max + Math.log(sum) - logits[base + ids[t + 1]!]!;
    }
    return nll;
  });
}

/** Real TinyStories text, tokenized like llama2.c, cut into `count` windows of `length` tokens. */
export function storyWindows(count: number, length: number): number[][] {
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
  const text = readFileSync(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'), 'utf8');
  const stream = text
    .split(/\n\s*\n/)
    .slice(0, 200)
    .flatMap((doc) => tokenizer.encode(doc.trim()));
  return Array.from({ length: count }, (_, i) => stream.slice(i * length, (i + 1) * length));
}

export function relativeError(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

/**
 * Greedy decoding from `prompt`, either one token at a time through the KV cache (present → past) or by
 * re-running the whole sequence each step; both must agree.
 */
export async function greedy(
  sess: ort.InferenceSession,
  layout: DecoderLayout,
  prompt: number[],
  steps: number,
  useCache: boolean,
): Promise<number[]> {
  const ids = [...prompt];
  const attention = layout.blocks.filter((b) => b.kind === 'attn');
  let past: { tensors: Record<string, ort.Tensor>; length: number } | undefined;
  for (let s = 0; s < steps; s++) {
    const input = useCache && past ? [ids.at(-1)!] : ids;
    const out = await sess.run(feeds(layout, [input], useCache ? past : undefined));
    const logits = out[layout.logits]!.data as Float32Array;
    const last = logits.subarray(logits.length - layout.vocabSize);
    ids.push(last.indexOf(Math.max(...last)));
    if (useCache) {
      const tensors: Record<string, ort.Tensor> = {};
      for (const block of attention)
        block.pastInputs.forEach((name, i) => {
          tensors[name] = out[block.presentOutputs[i]!]!;
        });
      past = { tensors, length: ids.length - 1 };
    }
  }
  return ids;
}

/** Next-token labels of a row: ids shifted left, the last position ignored. */
export function labelsOf(ids: number[]): number[] {
  return [...ids.slice(1), IGNORE_LABEL];
}

/** `evop_nll` and `evop_count` of an instrumented model, one row per (row, mask) pair given. */
export async function gatedNll(
  sess: ort.InferenceSession,
  layout: DecoderLayout,
  rows: number[][],
  masks: string[],
  labels: number[][] = rows.map(labelsOf),
): Promise<{ nll: number[]; count: number[] }> {
  const units = masks[0]!.length;
  const input = feeds(layout, rows);
  input[GATE_INPUT] = new ort.Tensor('float32', Float32Array.from(masks.join(''), Number), [
    rows.length,
    units,
  ]);
  input[LABELS_INPUT] = int64(labels.flat(), [rows.length, rows[0]!.length]);
  const out = await sess.run(input);
  return {
    nll: [...(out.evop_nll!.data as Float32Array)],
    count: [...(out.evop_count!.data as Float32Array)],
  };
}
