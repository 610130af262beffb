import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resolveDataFile } from '@evop/config';
import * as ort from 'onnxruntime-node';
import { DataType, type DecoderLayout, encodeModel, halfToFloat, type ModelProto } from '../src/index.ts';

/**
 * The hf-zoo fixtures (`../shared/data/hf-zoo`, see its README): small trained `transformers` models of several
 * families, each exported by PyTorch's exporters, with the logits `transformers` computes with named units
 * removed. Families and exports are whatever the folder holds.
 */
export const EXPORTS = {
  ts: 'TorchScript',
  dynamo: 'dynamo',
  'ts-past': 'TorchScript + KV cache',
  'ts-past-fp16': 'TorchScript + KV cache, fp16',
} as const;
export type ExportKind = keyof typeof EXPORTS;

export const zooDir = () => dirname(resolveDataFile('hf-zoo/README.md'));

export function zooFamilies(): string[] {
  return readdirSync(zooDir())
    .filter((name) => existsSync(join(zooDir(), name, 'reference.json')))
    .sort();
}

export function zooExports(family: string): { kind: ExportKind; path: string }[] {
  return (Object.keys(EXPORTS) as ExportKind[])
    .map((kind) => ({ kind, path: join(zooDir(), family, `model.${kind}.onnx`) }))
    .filter(({ path }) => existsSync(path));
}

export interface Reference {
  inputIds: number[][];
  attentionMask: number[][];
  masks: { name: string; mask: string; logits: Float32Array }[];
}

export function readReference(family: string): Reference {
  const dir = join(zooDir(), family);
  const json = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
    input_ids: number[][];
    attention_mask: number[][];
    masks: Record<string, { mask: string; file: string }>;
  };
  return {
    inputIds: json.input_ids,
    attentionMask: json.attention_mask,
    masks: Object.entries(json.masks).map(([name, { mask, file }]) => {
      const bytes = readFileSync(join(dir, file));
      return { name, mask, logits: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) };
    }),
  };
}

const int64 = (rows: number[][]) =>
  new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0]!.length]);

export function asFloat32(tensor: ort.Tensor): Float32Array {
  return tensor.type === 'float16' ? halfToFloat(tensor.data as Uint16Array) : (tensor.data as Float32Array);
}

/** An empty KV cache (or the given one) for each past input, in the dtype the input declares. */
function pastFeeds(layout: DecoderLayout, rows: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of layout.inputs) {
    if ([layout.inputIds, layout.attentionMask, layout.positionIds].includes(input.name)) continue;
    const dims = input.shape.map((d, i) => (i === 0 ? rows : typeof d === 'number' ? d : 0));
    feeds[input.name] =
      input.elemType === DataType.FLOAT16
        ? new ort.Tensor('float16', new Uint16Array(0), dims)
        : new ort.Tensor('float32', new Float32Array(0), dims);
  }
  return feeds;
}

/** A batch's feeds: ids, attention mask and positions where the export takes them, and the KV cache (empty). */
export function batchFeeds(
  layout: DecoderLayout,
  batch: { ids: number[][]; mask: number[][]; positions: number[][] },
  past = pastFeeds(layout, batch.ids.length),
): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = { ...past, [layout.inputIds]: int64(batch.ids) };
  if (layout.attentionMask) feeds[layout.attentionMask] = int64(batch.mask);
  if (layout.positionIds) feeds[layout.positionIds] = int64(batch.positions);
  return feeds;
}

export function session(model: ModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, intraOpNumThreads: 1 });
}

/**
 * The model's logits [rows, T, vocab] for the reference batch, fed as `transformers` saw it: left-padded rows,
 * positions 0…T−1 in every row, an empty KV cache where the export has one.
 */
export async function referenceBatchLogits(
  sess: ort.InferenceSession,
  layout: DecoderLayout,
  reference: Pick<Reference, 'inputIds' | 'attentionMask'>,
): Promise<Float32Array> {
  const { inputIds, attentionMask } = reference;
  const positions = inputIds.map((row) => row.map((_, t) => t));
  const out = await sess.run(batchFeeds(layout, { ids: inputIds, mask: attentionMask, positions }), [
    layout.logits,
  ]);
  return asFloat32(out[layout.logits]!);
}

/**
 * The same logits computed one token at a time through the KV cache: each step feeds one token per row, the
 * attention mask so far, its position, and the previous step's present outputs as the past.
 */
export async function decodedLogits(
  sess: ort.InferenceSession,
  layout: DecoderLayout,
  reference: Pick<Reference, 'inputIds' | 'attentionMask'>,
): Promise<Float32Array> {
  const { inputIds, attentionMask } = reference;
  const B = inputIds.length;
  const T = inputIds[0]!.length;
  let past = pastFeeds(layout, B);
  const steps: Float32Array[] = [];
  let vocab = 0;
  for (let t = 0; t < T; t++) {
    const step = {
      ids: inputIds.map((row) => [row[t]!]),
      mask: attentionMask.map((row) => row.slice(0, t + 1)),
      positions: inputIds.map(() => [t]),
    };
    const out = await sess.run(batchFeeds(layout, step, past));
    const logits = asFloat32(out[layout.logits]!);
    vocab = logits.length / B;
    steps.push(logits);
    past = {};
    for (const block of layout.blocks)
      block.pastInputs.forEach((name, i) => {
        past[name] = out[block.presentOutputs[i]!]!;
      });
  }
  const all = new Float32Array(B * T * vocab);
  steps.forEach((logits, t) => {
    for (let b = 0; b < B; b++) all.set(logits.subarray(b * vocab, (b + 1) * vocab), (b * T + t) * vocab);
  });
  return all;
}

/** The largest |a − b| over positions the attention mask keeps. */
export function worstDiff(a: Float32Array, b: Float32Array, attentionMask: number[][]): number {
  const T = attentionMask[0]!.length;
  const vocab = a.length / (attentionMask.length * T);
  let worst = 0;
  for (const [r, row] of attentionMask.entries())
    for (const [t, kept] of row.entries()) {
      if (!kept) continue;
      for (let v = 0; v < vocab; v++) {
        const i = (r * T + t) * vocab + v;
        worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      }
    }
  return worst;
}

/** How close a pruned export must come to `transformers`: fp32 to 1e-4, fp16 to 2e-2. */
export function tolerance(layout: DecoderLayout): number {
  return layout.streamType === DataType.FLOAT16 ? 2e-2 : 1e-4;
}
